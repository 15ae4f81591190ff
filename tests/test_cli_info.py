"""``python -m pytest_amdgpu info`` and the command dispatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytest_amdgpu import __main__ as cli_main
from pytest_amdgpu.cli import info as cli_info
from pytest_amdgpu.kfd.port import TOPOLOGY_PATH, LinuxPort


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_amdgpu", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(os.path.exists("/dev/kfd"), reason="this machine has a KFD")
def test_info_without_gpu_says_why():
    r = run_cli("info")
    assert r.returncode == 0, r.stderr
    assert "No AMD GPU available" in r.stdout
    assert "/dev/kfd does not exist" in r.stdout
    assert "--amdgpu-backend=sim" in r.stdout


@pytest.mark.skipif(not os.path.exists("/dev/kfd"), reason="needs /dev/kfd")
def test_info_with_kfd_lists_gpus():  # pragma: no cover - GPU hosts only
    r = run_cli("info")
    assert r.returncode == 0, r.stderr
    assert "KFD ioctl version 1." in r.stdout


def test_info_json_is_machine_readable():
    r = run_cli("info", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["backend"] == "kfd"
    if not os.path.exists("/dev/kfd"):
        assert data["gpus"] == [] and data["kfd_version"] is None
        assert any("/dev/kfd" in p for p in data["problems"])


def test_info_sim_lists_the_simulated_gpus():
    r = run_cli("info", "--sim", "gfx942x2,gfx1100")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "/dev/dri/renderD" in ln]
    assert len(lines) == 3, r.stdout
    targets = [ln.split()[2] for ln in lines]
    assert targets == ["gfx942", "gfx942", "gfx1100"]
    assert "backend sim" in r.stdout and "KFD ioctl version 1." in r.stdout
    data = json.loads(run_cli("info", "--sim", "gfx942x2,gfx1100", "--json").stdout)
    assert [g["target"] for g in data["gpus"]] == ["gfx942", "gfx942", "gfx1100"]
    assert [g["wave_front_size"] for g in data["gpus"]] == [64, 64, 32]


def _write_gpu_tree(tmp_path):
    root = tmp_path / TOPOLOGY_PATH.lstrip("/")
    node = root / "nodes" / "1"
    (node / "mem_banks" / "0").mkdir(parents=True)
    (root / "nodes" / "0").mkdir()
    (root / "generation_id").write_text("3\n")
    (root / "nodes" / "0" / "gpu_id").write_text("0\n")
    (root / "nodes" / "0" / "properties").write_text("cpu_cores_count 16\nsimd_count 0\n")
    (node / "gpu_id").write_text("8461\n")
    (node / "name").write_text("gfx1100\n")
    # RX 7900 XTX values, facts-kfd.md §6.3 (TG)
    (node / "properties").write_text(
        "simd_count 192\nwave_front_size 32\narray_count 12\nsimd_arrays_per_engine 2\n"
        "simd_per_cu 2\ngfx_target_version 110000\nlocation_id 34304\ndomain 0\n"
        "drm_render_minor 129\nnum_xcc 1\n")
    (node / "mem_banks" / "0" / "properties").write_text(
        "heap_type 1\nsize_in_bytes 25753026560\n")


def test_info_table_from_a_topology(tmp_path):
    _write_gpu_tree(tmp_path)
    info = cli_info.collect(LinuxPort(root=str(tmp_path)), backend="kfd", source="test")
    text = cli_info.render_text(info)
    (row,) = [ln for ln in text.splitlines() if "renderD129" in ln]
    cols = row.split()
    assert cols[:5] == ["1", "8461", "gfx1100", "gfx1100", "96"]
    assert cols[5:7] == ["1", "32"]                   # XCC, wave size
    assert "24.0 GiB" in row and "0000:86:00.0" in row
    assert "1 GPU" in text


def test_unavailable_command_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(cli_main.COMMANDS, "nonexistent", "a command nobody wrote")
    assert cli_main.main(["nonexistent", "--flag"]) == 2
    assert "not available" in capsys.readouterr().err


def test_unknown_command_and_help(capsys):
    assert cli_main.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert cli_main.main([]) == 2
    assert cli_main.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "info" in out and "decode" in out and "report" in out
