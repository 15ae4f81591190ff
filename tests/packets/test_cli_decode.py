"""``python -m pytest_amdgpu decode`` through a real subprocess, on small dump files whose
dwords come from the published golden packets (facts-pm4.md §6, facts-sdma-aql-codeobj.md §6)."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

G4_WAIT = [0xC0053C00, 0x00000015, 0x00002000, 0x00000001, 0x00000010, 0xFFFFFFFF, 0x00000004]
G9_RSRC3_GFX9 = [0xC0017600, 0x0000022D, 0x00000000]
G5_RELEASE = [0xC0064900, 0x00238514, 0x42000000, 0x00003000, 0x00000001, 0x55667788,
              0x11223344, 0x00000000]
G1_NOP = [0xFFFF1000]
SDMA_FENCE_TRAP = [0x00000005, 0x00003000, 0x00000000, 0x00000001, 0x00000006, 0x00000007]
AQL_DISPATCH = [0x00011502, 0x00010100, 0x00000001, 0x00000400, 0x00000001, 0x00000001, 0, 0,
                0x00001000, 0x00007F00, 0x00002000, 0x00007F00, 0, 0, 0x00003000, 0x00007F00]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_amdgpu", "decode", *args],
                          input=stdin, capture_output=True, timeout=60)


def dump(path, dwords) -> str:
    path.write_bytes(struct.pack(f"<{len(dwords)}I", *dwords))
    return str(path)


def test_pm4_binary_file(tmp_path):
    f = dump(tmp_path / "ring.bin", G4_WAIT + G9_RSRC3_GFX9 + G5_RELEASE + G1_NOP)
    r = run("--pm4", f, "--target", "gfx942", "--start", "0x20", "--mark", "0x27")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 4
    assert 'WAIT_REG_MEM mem addr=0x100002000 func=">=" ref=0x10' in lines[0]
    assert lines[0].lstrip().startswith("0x000020")
    assert lines[1].startswith("=>") and "SET_SH_REG COMPUTE_PGM_RSRC3=0x0" in lines[1]
    assert "RELEASE_MEM" in lines[2] and "data_sel=64bit" in lines[2]
    assert "tc_wb" in lines[2] and "tc_md" in lines[2]
    assert lines[3].rstrip().endswith("NOP")


def test_pm4_hex_text_from_stdin():
    text = "# G4 then garbage\nC0053C00 00000015 00002000 00000001\n0x10, FFFFFFFF, 4\n12345678\n"
    r = run("--pm4", "-", "--hex", "--target", "gfx1100", stdin=text.encode())
    assert r.returncode == 1            # one undecodable dword
    out = r.stdout.decode().splitlines()
    assert "WAIT_REG_MEM" in out[0] and "??? 0x12345678" in out[1]


def test_sdma_needs_target_and_decodes(tmp_path):
    f = dump(tmp_path / "sdma.bin", SDMA_FENCE_TRAP)
    r = run("--sdma", f)
    assert r.returncode == 2 and b"--target" in r.stderr
    r = run("--sdma", f, "--target", "gfx90a", "--start", "0x40")
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert "FENCE addr=0x3000 data=0x1" in out[0] and "0x000040" in out[0]
    assert "TRAP ctx=0x7" in out[1] and "0x000050" in out[1]


def test_aql_file(tmp_path):
    f = dump(tmp_path / "aql.bin", AQL_DISPATCH + [1] + [0] * 15)
    r = run("--aql", f, "--start", "5", "--mark", "6")
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert "KERNEL_DISPATCH barrier acq=system rel=system dims=1 wg=256x1x1 grid=1024x1x1" \
        in out[0]
    assert "[5]" in out[0]
    assert out[1].startswith("=>") and "INVALID" in out[1]


@pytest.mark.parametrize("args", [["--pm4"], ["--pm4", "/nonexistent/x.bin"], []])
def test_usage_errors(args):
    assert run(*args).returncode == 2
