"""Markers: unmet requirements skip at collection with their reason; known failures xfail."""

from __future__ import annotations

import pytest

from pytest_amdgpu.plugin.select import (
    CAPABILITIES,
    KnownFailure,
    has_capability,
    load_known_failures,
)

from ._helpers import text

SIM3 = "--amdgpu-sim=gfx90a,gfx942,gfx1100"


def test_capability_names_are_data():
    # LLVM AMDGPUUsage: gfx1100 (RDNA3) runs wave32 and wave64, has no AGPRs and no xnack;
    # gfx90a / gfx942 (CDNA2 / CDNA3) are wave64-only with an AGPR file and xnack support.
    assert has_capability("wave32", "gfx1100", None) is True
    assert has_capability("wave32", "gfx90a", None) is False
    assert has_capability("wave64", "gfx1100", None) is True
    assert has_capability("agprs", "gfx942", None) is True
    assert has_capability("agprs", "gfx1100", None) is False
    assert has_capability("xnack", "gfx90a", None) is True
    assert has_capability("xnack", "gfx1100", None) is False
    # topology capabilities need the node's properties
    assert has_capability("multi_xcc", "gfx942", None) is None
    assert has_capability("multi_xcc", "gfx942", {"num_xcc": 8}) is True
    assert has_capability("multi_xcc", "gfx942", {"num_xcc": 1}) is False
    assert has_capability("sdma_xgmi", "gfx90a", {"num_sdma_xgmi_engines": 0}) is False
    assert {"wave32", "wave64", "agprs", "xnack", "architected_flat_scratch", "sdma_xgmi",
            "multi_xcc"} <= set(CAPABILITIES)


def test_marker_skips_carry_their_reasons(pytester, run):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.amdgpu_target("gfx9*")
        def test_gfx9_only(amdgpu_device):
            assert amdgpu_device.name.startswith("gfx9")

        @pytest.mark.amdgpu_requires("wave32")
        def test_wave32(amdgpu_device):
            assert amdgpu_device.name == "gfx1100"

        @pytest.mark.amdgpu_requires("agprs", "architected_flat_scratch")
        def test_agprs_flat(amdgpu_device):
            assert amdgpu_device.name == "gfx942"

        @pytest.mark.amdgpu_min_devices(4)
        def test_four(amdgpu_devices):
            pass

        @pytest.mark.amdgpu_min_devices(3)
        def test_three(amdgpu_devices):
            assert len(amdgpu_devices) == 3

        @pytest.mark.amdgpu_hw_only
        def test_hw(amdgpu_device):
            pass

        @pytest.mark.amdgpu_sim_only
        def test_sim(amdgpu_device):
            pass
    """)
    result = run("--amdgpu-backend=sim", SIM3, "-rs", "-v")
    out = text(result)
    result.assert_outcomes(passed=2 + 1 + 1 + 1 + 3, skipped=1 + 2 + 2 + 1 + 3)
    assert "target gfx1100 of device gfx1100 does not match amdgpu_target('gfx9*')" in out
    assert ("device gfx90a (gfx90a) lacks capability 'wave32': kernels may run 32-wide waves"
            in out)
    assert "device gfx90a (gfx90a) lacks capability 'architected_flat_scratch'" in out
    assert "device gfx1100 (gfx1100) lacks capability 'agprs'" in out
    assert "needs 4 devices (amdgpu_min_devices), the run has 3" in out
    assert "hardware-only test (amdgpu_hw_only); the backend is sim" in out
    # skips are reported at the test, not inside the plugin
    assert "pytest_amdgpu/plugin" not in "\n".join(line for line in result.outlines
                                                    if line.startswith("SKIPPED"))


def test_unknown_capability_is_an_error(pytester, run):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.amdgpu_requires("warp_drive")
        def test_x(amdgpu_device):
            pass
    """)
    result = run("--amdgpu-backend=sim")
    result.assert_outcomes(errors=1)
    assert "amdgpu_requires: unknown capabilities ['warp_drive']; accepted values:" in text(
        result)


def test_indirect_device_parameter(pytester, run):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("amdgpu_device", ["gfx1100"], indirect=True)
        def test_pinned(amdgpu_device):
            assert amdgpu_device.name == "gfx1100"

        @pytest.mark.parametrize("amdgpu_device", ["gfx90a"], indirect=True)
        def test_absent(amdgpu_device):
            pass
    """)
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx942,gfx1100", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    assert "'gfx90a' matches no device" in text(result)


KNOWN_TXT = """\
# test id pattern              target[@backend]   reason
test_known.py::test_broken*     gfx1100            SDMA 6 copy not modelled yet (#12)
*::test_other                   *@kfd              only on hardware
"""

KNOWN_TOML = """\
[[known_failure]]
test = "test_known.py::test_broken"
target = "gfx1100"
reason = "SDMA 6 copy not modelled yet (#12)"
"""


@pytest.mark.parametrize(("name", "content"), [("known.txt", KNOWN_TXT),
                                                ("known.toml", KNOWN_TOML)])
def test_known_failures_become_xfail(pytester, run, name, content):
    pytester.makefile("." + name.split(".")[1], **{name.split(".")[0]: content})
    pytester.makepyfile(test_known="""
        def test_broken(amdgpu_device):
            assert amdgpu_device.name != "gfx1100"

        def test_other(amdgpu_device):
            pass
    """)
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx942,gfx1100", "-rxX",
                 f"--amdgpu-known-failures={name}")
    result.assert_outcomes(passed=3, xfailed=1)
    out = text(result)
    assert "known failure on gfx1100: SDMA 6 copy not modelled yet (#12)" in out


def test_known_failure_file_formats(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text(KNOWN_TXT)
    entries = load_known_failures(str(path))
    assert entries[0] == KnownFailure("test_known.py::test_broken*", "gfx1100",
                                      "SDMA 6 copy not modelled yet (#12)", "*",
                                      f"{path}:2")
    assert entries[1].backend == "kfd"
    # a test id matches from any path boundary, with or without its parameters
    hit = entries[0]
    assert hit.matches("../site-packages/x/test_known.py::test_broken[gfx1100]", "gfx1100",
                       "sim")
    assert not hit.matches("test_known.py::test_broken[gfx942]", "gfx942", "sim")
    assert not entries[1].matches("a.py::test_other", "gfx942", "sim")
    bad = tmp_path / "bad.txt"
    bad.write_text("only_two fields\n")
    with pytest.raises(pytest.UsageError, match=r"bad.txt, line 1: .* needs three fields"):
        load_known_failures(str(bad))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('[[known_failure]]\ntest = "x"\n')
    with pytest.raises(pytest.UsageError, match=r"needs test = .* and reason"):
        load_known_failures(str(bad_toml))


def test_the_suites_known_failure_list_is_the_default():
    """Without --amdgpu-known-failures the shipped conformance list applies (also under
    --pyargs, where no ini file is found); it parses and is empty."""
    from pytest_amdgpu.plugin.select import load_known_failures
    from pytest_amdgpu.plugin.session import shipped_known_failures

    path = shipped_known_failures()
    assert path.endswith("known_failures.toml")
    assert load_known_failures(path) == []
