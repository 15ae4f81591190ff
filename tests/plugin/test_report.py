"""The --amdgpu-report JSON file, the terminal matrix, and ``python -m pytest_amdgpu report``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_amdgpu.cli import report as report_cli
from pytest_amdgpu.plugin.report import SCHEMA, matrix_of, text_matrix

from ._helpers import text

SUITE = {
    "test_memory": """
        import pytest

        def test_alloc(amdgpu_device, amdgpu_buffer):
            assert amdgpu_buffer(4096).size == 4096

        @pytest.mark.amdgpu_target("gfx9*")
        def test_gfx9(amdgpu_device):
            pass
    """,
    "test_misc": """
        import pytest

        @pytest.mark.amdgpu_area("sync")
        def test_broken(amdgpu_device):
            assert amdgpu_device.name != "gfx1100", "broken on gfx1100"

        @pytest.mark.amdgpu_area("sync")
        def test_known(amdgpu_device):
            assert amdgpu_device.name != "gfx942"

        def test_host_only():
            pass
    """,
}
KNOWN = "test_misc.py::test_known gfx942 the simulator lacks it\n"


def _run_suite(pytester, run, report_name, sim):
    pytester.makepyfile(**SUITE)
    pytester.makefile(".txt", known=KNOWN)
    return run("--amdgpu-backend=sim", f"--amdgpu-sim={sim}", "--amdgpu-known-failures=known.txt",
               f"--amdgpu-report={report_name}")


def test_json_report_and_terminal_matrix(pytester, run):
    result = _run_suite(pytester, run, "out/report.json", "gfx942,gfx1100")
    result.assert_outcomes(passed=6, failed=1, skipped=1, xfailed=1)
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert data["schema"] == SCHEMA
    run_meta = data["run"]
    assert run_meta["backend"] == "sim" and run_meta["simulated"] is True
    assert run_meta["kfd_version"] == "1.17"
    assert run_meta["targets"] == ["gfx1100", "gfx942"]
    assert {d["key"] for d in run_meta["devices"]} == {"gfx942", "gfx1100"}
    assert run_meta["exitstatus"] == 1 and run_meta["partial"] is False
    rows = {t["nodeid"]: t for t in data["tests"]}
    assert len(rows) == 9
    broken = rows["test_misc.py::test_broken[gfx1100]"]
    assert broken["outcome"] == "failed" and broken["area"] == "sync"
    assert broken["target"] == "gfx1100" and broken["backend"] == "sim"
    assert "broken on gfx1100" in broken["message"] and broken["gpu_id"]
    known = rows["test_misc.py::test_known[gfx942]"]
    assert known["outcome"] == "xfailed" and known["known_failure"] == "the simulator lacks it"
    skipped = rows["test_memory.py::test_gfx9[gfx1100]"]
    assert skipped["outcome"] == "skipped" and "amdgpu_target" in skipped["message"]
    assert rows["test_memory.py::test_alloc[gfx942]"]["area"] == "memory"
    host = rows["test_misc.py::test_host_only"]
    assert host["outcome"] == "passed" and host["target"] is None
    assert data["summary"]["failed"] == 1 and data["summary"]["total"] == 9
    assert data["matrix"]["sync"]["gfx942"] == {"passed": 1, "failed": 0, "skipped": 0,
                                                "xfailed": 1}
    out = text(result)
    assert "amdgpu results: area x target (passed/failed/skipped; backend sim)" in out
    result.stdout.re_match_lines([r"area\s+gfx942\s+gfx1100",
                                  r"memory\s+2/0/0\s+1/0/1",
                                  r"sync\s+1/0/0 x1\s+1/1/0",
                                  r"total\s+3/0/0 x1\s+2/1/1"])
    assert "amdgpu: JSON report written to" in out


def test_text_matrix_cells():
    tests = [{"area": "a", "target": "gfx942", "outcome": o}
             for o in ("passed", "passed", "failed", "error", "skipped", "xfailed", "xpassed")]
    matrix = matrix_of(tests)
    assert matrix == {"a": {"gfx942": {"passed": 3, "failed": 2, "skipped": 1, "xfailed": 1}}}
    lines = text_matrix(matrix)
    assert lines[1].split() == ["a", "3/2/1", "x1"]


def test_report_cli_merges_two_machines(pytester, run, tmp_path):
    _run_suite(pytester, run, "a.json", "gfx942,gfx1100")
    a = json.loads((pytester.path / "a.json").read_text())
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx90a", "--amdgpu-report=b.json",
                 "--amdgpu-known-failures=known.txt")
    result.assert_outcomes(passed=5)
    b = json.loads((pytester.path / "b.json").read_text())
    b["run"]["host"] = "lab-host"          # as if it came from another machine
    (pytester.path / "b.json").write_text(json.dumps(b))
    md, page = tmp_path / "m.md", tmp_path / "m.html"
    proc = subprocess.run([sys.executable, "-m", "pytest_amdgpu", "report",
                           str(pytester.path / "a.json"), str(pytester.path / "b.json"),
                           "--markdown", str(md), "--html", str(page)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text_md = md.read_text()
    host_a = a["run"]["host"]
    header = next(line for line in text_md.splitlines() if line.startswith("| area |"))
    assert header == (f"| area | gfx1100 · {host_a} | gfx90a · lab-host | "
                      f"gfx942 · {host_a} | - · lab-host | - · {host_a} |")
    assert "| memory | 1/0/1 | 2/0/0 | 2/0/0 | · | · |" in text_md
    assert "| misc | · | · | · | 1/0/0 | 1/0/0 |" in text_md
    assert "| sync | 1/1/0 | 2/0/0 | 1/0/0 x1 | · | · |" in text_md
    assert "## Failures (1)" in text_md
    assert "`test_misc.py::test_broken[gfx1100]`" in text_md and "broken on gfx1100" in text_md
    html_text = page.read_text()
    assert html_text.startswith("<!DOCTYPE html>")
    assert "<th>gfx90a · lab-host</th>" in html_text
    assert 'class="num fail">1/1/0</td>' in html_text
    # default: Markdown on stdout
    proc = subprocess.run([sys.executable, "-m", "pytest_amdgpu", "report",
                           str(pytester.path / "a.json")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("# pytest-amdgpu report")
    assert "| area | gfx1100 | gfx942 | - |" in proc.stdout


@pytest.mark.parametrize(("content", "problem"), [
    ("not json", "not JSON"),
    ('{"schema": "other/1"}', "not a pytest-amdgpu report"),
    ('{"schema": "pytest-amdgpu-report/1", "run": {}, "tests": [{"nodeid": "x"}]}',
     "tests[0] lacks 'nodeid' or 'outcome'"),
])
def test_report_cli_rejects_bad_files(tmp_path, capsys, content, problem):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert report_cli.main([str(bad)]) == 2
    assert problem in capsys.readouterr().err


def test_junit_properties_per_test(pytester, run):
    pytester.makepyfile("""
        def test_dev(amdgpu_device):
            pass

        def test_host():
            pass
    """)
    run("--amdgpu-backend=sim", "--amdgpu-sim=gfx1100", "--junitxml=junit.xml").assert_outcomes(
        passed=2)
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_dev[gfx1100]"].iter("property")}
    assert props["amdgpu_backend"] == "sim"
    assert props["amdgpu_target"] == "gfx1100"
    assert props["amdgpu_gpu_id"].startswith("0x") and int(props["amdgpu_gpu_id"], 16) != 0
    assert props["amdgpu_kfd_version"] == "1.17"
    assert list(cases["test_host"].iter("property")) == []
