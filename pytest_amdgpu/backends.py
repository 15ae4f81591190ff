"""The backend registry: a backend turns a name into a Port.

`kfd` gives a LinuxPort (real /dev/kfd); `sim` gives the simulator's SimPort, imported only when
asked for, so the runtime, the ioctl layer and the suite never import the simulator. Plugins
add backends through the `pytest_amdgpu_register_backends` hook or `register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import BackendUnavailable
from .kfd.port import Port


@dataclass(frozen=True)
class Backend:
    """A named source of Ports.

    `make_peer_port(port, **options)`, when given, opens a second KFD process on the machine
    `port` belongs to, inside this OS process: for backends whose GPUs a child process cannot
    reach (the simulator's machine lives in this process). Without it a second KFD process is
    a forked child that opens the backend anew, as on hardware.
    """

    name: str
    make_port: Callable[..., Port]
    available: Callable[[], tuple[bool, str]]
    description: str = ""
    simulated: bool = False
    make_peer_port: Callable[..., Port] | None = None


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend, *, replace: bool = False) -> None:
    if backend.name in ("auto",):
        raise ValueError("'auto' is reserved for backend selection")
    if backend.name in _BACKENDS and not replace:
        raise ValueError(f"backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend


def backend_names() -> list[str]:
    return list(_BACKENDS)


def get_backend(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(
            f"unknown backend {name!r}; registered backends: {', '.join(_BACKENDS)} "
            "(or 'auto')") from None


def resolve_backend(name: str = "auto", *, require_hw: bool = False) -> tuple[Backend, str]:
    """Pick a backend. `auto` takes the real GPU when /dev/kfd is usable, else the simulator.

    Returns the backend and a sentence saying why it was chosen.
    """
    if name != "auto":
        backend = get_backend(name)
        ok, why = backend.available()
        if not ok:
            raise BackendUnavailable(f"backend {name!r} is not usable: {why}")
        if require_hw and backend.simulated:
            raise BackendUnavailable(f"backend {name!r} is simulated but hardware was required")
        return backend, f"backend {name!r} requested"
    hw = get_backend("kfd")
    ok, why = hw.available()
    if ok:
        return hw, f"auto: {why}"
    if require_hw:
        raise BackendUnavailable(f"a GPU is required but {why}")
    return get_backend("sim"), f"auto: no usable GPU ({why}), using the simulator"


def _kfd_available() -> tuple[bool, str]:
    from .kfd.port import LinuxPort

    return LinuxPort().kfd_usable()


def _make_linux_port(**options) -> Port:
    from .kfd.port import LinuxPort

    return LinuxPort(record=options.get("record", False))


def _make_sim_port(**options) -> Port:
    from .sim.port import SimPort

    return SimPort(**options)


def _make_sim_peer_port(port: Port, **options) -> Port:
    """Another simulated process on `port`'s simulated machine (it outlives this port)."""
    from .sim.port import SimPort

    machine = getattr(port, "machine", None)
    if not isinstance(port, SimPort) or machine is None:
        raise BackendUnavailable(f"a peer of {port!r} was asked of the sim backend, which "
                                 "makes peers of its own ports only")
    return SimPort(machine, **options)


register_backend(Backend("kfd", _make_linux_port, _kfd_available,
                         "the real GPU through /dev/kfd and the render nodes"))
register_backend(Backend("sim", _make_sim_port, lambda: (True, "the simulator is always available"),
                         "the simulated GPU behind the same ioctls", simulated=True,
                         make_peer_port=_make_sim_peer_port))
