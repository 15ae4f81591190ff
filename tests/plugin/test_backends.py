"""The backend registry seen from the plugin: the plugin reaches the simulator only through a
backend, and the simulator's backend offers peer ports for ``amdgpu_process``."""

from __future__ import annotations

import ast
import pathlib

import pytest

import pytest_amdgpu.plugin
from pytest_amdgpu.backends import get_backend
from pytest_amdgpu.errors import BackendUnavailable

PLUGIN_DIR = pathlib.Path(pytest_amdgpu.plugin.__file__).parent


def _imported_modules(path: pathlib.Path) -> list[str]:
    """Absolute names of the modules a plugin file imports (relative imports resolved)."""
    package = "pytest_amdgpu.plugin"
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", sorted(PLUGIN_DIR.glob("*.py")), ids=lambda p: p.name)
def test_plugin_never_imports_the_simulator(path):
    bad = [m for m in _imported_modules(path)
           if m == "pytest_amdgpu.sim" or m.startswith("pytest_amdgpu.sim.")]
    assert bad == [], f"{path.name} imports {bad}: reach the simulator through a backend"


def test_the_import_check_sees_relative_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from ..sim.port import SimPort\nfrom .. import sim\n")
    names = _imported_modules(f)
    assert "pytest_amdgpu.sim.port" in names and "pytest_amdgpu.sim" in names


def test_sim_peer_port_shares_the_machine():
    sim = get_backend("sim")
    port = sim.make_port(sim="gfx942x2")
    try:
        peer = sim.make_peer_port(port, record=True)
        assert peer is not port and peer.machine is port.machine and peer.recording
        # the peer is another KFD process on the same GPUs: the same topology through it
        assert peer.read_sysfs("/sys/devices/virtual/kfd/kfd/topology/generation_id") == \
            port.read_sysfs("/sys/devices/virtual/kfd/kfd/topology/generation_id")
        peer.close_port()
        # closing the peer ends its process only; the machine still serves the first port
        assert port.list_sysfs("/sys/devices/virtual/kfd/kfd/topology/nodes")
    finally:
        port.close_port()


def test_sim_peer_of_a_foreign_port_is_refused():
    from pytest_amdgpu.kfd.port import LinuxPort

    with pytest.raises(BackendUnavailable, match="peer"):
        get_backend("sim").make_peer_port(LinuxPort())


def test_hardware_backend_has_no_peer_ports():
    # on hardware a second KFD process is a forked child that opens /dev/kfd itself
    assert get_backend("kfd").make_peer_port is None
