"""Options: command line > environment > ini > default; bad values are usage errors."""

from __future__ import annotations

import pytest

from pytest_amdgpu.plugin.options import (
    BY_NAME,
    OPTIONS,
    parse_device_list,
    parse_sim_spec,
    resolve_options,
)

from ._helpers import text


def _config(pytester: pytest.Pytester, *args: str, ini: str = "") -> pytest.Config:
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    return pytester.parseconfig(*args)


def test_every_option_has_flag_env_and_ini():
    names = {o.flag for o in OPTIONS}
    assert {"--amdgpu-backend", "--amdgpu-require-hw", "--amdgpu-sim", "--amdgpu-devices",
            "--amdgpu-timeout", "--amdgpu-artifacts", "--amdgpu-lock-dir", "--amdgpu-report",
            "--amdgpu-known-failures"} <= names
    assert BY_NAME["backend"].env == "PYTEST_AMDGPU_BACKEND"
    assert BY_NAME["backend"].ini == "amdgpu_backend"
    assert BY_NAME["lock_dir"].env == "PYTEST_AMDGPU_LOCK_DIR"


def test_precedence_cli_env_ini_default(pytester):
    config = _config(pytester, ini="amdgpu_sim = gfx90a\namdgpu_timeout = 7")
    opts = resolve_options(config, environ={})
    assert opts.sim == ("gfx90a",) and opts.sources["sim"] == "ini option amdgpu_sim"
    assert opts.timeout == 7.0
    assert opts.backend == "auto" and opts.sources["backend"] == "default"
    opts = resolve_options(config, environ={"PYTEST_AMDGPU_SIM": "gfx1100",
                                            "PYTEST_AMDGPU_TIMEOUT": "2.5"})
    assert opts.sim == ("gfx1100",) and opts.timeout == 2.5
    config = pytester.parseconfig("--amdgpu-sim=gfx942x2,gfx90a", "--amdgpu-timeout=1")
    opts = resolve_options(config, environ={"PYTEST_AMDGPU_SIM": "gfx1100",
                                            "PYTEST_AMDGPU_TIMEOUT": "2.5"})
    assert opts.sim == ("gfx942", "gfx942", "gfx90a") and opts.timeout == 1.0
    assert opts.sources["sim"] == "--amdgpu-sim"


def test_boolean_env_and_ini(pytester):
    config = _config(pytester, ini="amdgpu_require_hw = yes")
    assert resolve_options(config, environ={}).require_hw is True
    assert resolve_options(config, environ={"PYTEST_AMDGPU_REQUIRE_HW": "0"}).require_hw is False
    with pytest.raises(pytest.UsageError, match="accepted values: 1/true/yes/on"):
        resolve_options(config, environ={"PYTEST_AMDGPU_REQUIRE_HW": "maybe"})


def test_ini_paths_are_relative_to_the_ini_file(pytester):
    config = _config(pytester, ini="amdgpu_report = out/report.json")
    opts = resolve_options(config, environ={})
    assert opts.report == str(pytester.path / "out" / "report.json")


@pytest.mark.parametrize(("raw", "expected"), [
    ("gfx942", ("gfx942",)),
    ("gfx90a,gfx942,gfx1100", ("gfx90a", "gfx942", "gfx1100")),
    ("gfx942x2", ("gfx942", "gfx942")),
    (" gfx1100x2 , gfx90a ", ("gfx1100", "gfx1100", "gfx90a")),
])
def test_sim_spec(raw, expected):
    assert parse_sim_spec(raw, "--amdgpu-sim") == expected


@pytest.mark.parametrize("raw", ["gfx943", "", "gfx942,", "gfx942x0", "942", "gfx942x2x3"])
def test_bad_sim_spec(raw):
    with pytest.raises(pytest.UsageError, match=r"--amdgpu-sim.*accepted values"):
        parse_sim_spec(raw, "--amdgpu-sim")


def test_device_list():
    assert parse_device_list("0, gfx9*,gpu_id:1234", "x") == ("0", "gfx9*", "gpu_id:1234")
    with pytest.raises(pytest.UsageError, match="accepted values"):
        parse_device_list("0;1", "--amdgpu-devices")


@pytest.mark.parametrize(("args", "env", "fragments"), [
    (["--amdgpu-backend=foo"], {}, ["--amdgpu-backend=foo", "accepted values: auto,", "sim"]),
    (["--amdgpu-sim=gfx999"], {}, ["--amdgpu-sim", "unknown target 'gfx999'",
                                   "gfx1100, gfx90a, gfx942"]),
    (["--amdgpu-timeout=-3"], {}, ["--amdgpu-timeout", "a number > 0"]),
    ([], {"PYTEST_AMDGPU_TIMEOUT": "soon"}, ["PYTEST_AMDGPU_TIMEOUT", "a number > 0"]),
    (["--amdgpu-lock-timeout=x"], {}, ["--amdgpu-lock-timeout", "a number >= 0"]),
    (["--amdgpu-backend=sim", "--amdgpu-devices=gfx1100"], {},
     ["--amdgpu-devices", "'gfx1100' matches no device", "gfx942 (device 0, gpu_id 0x"]),
    (["--amdgpu-backend=sim", "--amdgpu-devices=0x1234"], {},
     ["--amdgpu-devices", "'0x1234' matches no device", "gpu_ids"]),
    (["--amdgpu-known-failures=missing.txt"], {}, ["--amdgpu-known-failures",
                                                   "cannot read"]),
])
def test_bad_values_are_usage_errors(pytester, run, monkeypatch, args, env, fragments):
    pytester.makepyfile("def test_x():\n    pass\n")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text(result)
    errors = "\n".join(result.errlines)
    for fragment in fragments:
        assert fragment in errors, (fragment, errors)


def test_require_hw_without_a_gpu_is_an_error(pytester, run):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = run("--amdgpu-require-hw")
    if result.ret == 0:
        pytest.skip("this machine has a usable GPU")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--amdgpu-require-hw: a GPU is required but" in "\n".join(result.errlines)


def test_env_and_ini_precedence_end_to_end(pytester, run, monkeypatch):
    pytester.makepyfile("""
        def test_target(amdgpu_device):
            pass
    """)
    pytester.makeini("[pytest]\namdgpu_sim = gfx90a\n")
    result = run("--amdgpu-backend=sim", "-v")
    result.stdout.fnmatch_lines(["*test_target?gfx90a? PASSED*"])
    monkeypatch.setenv("PYTEST_AMDGPU_SIM", "gfx1100")
    result = run("--amdgpu-backend=sim", "-v")
    result.stdout.fnmatch_lines(["*test_target?gfx1100? PASSED*"])
    result = run("--amdgpu-backend=sim", "-v", "--amdgpu-sim=gfx942x2",
                 "--amdgpu-devices=1")
    result.stdout.fnmatch_lines(["*test_target?gfx942-1? PASSED*"])
    result.assert_outcomes(passed=1)
