"""The plugin's fixtures (all prefixed ``amdgpu_``).

Everything a fixture makes is tagged with the test's node id as owner and released at teardown;
what a test makes itself on the fixtures' devices and leaves alive is released by the guard and
makes a passing test ERROR (see guard). Function-scoped fixtures accept options by
indirect parametrization, e.g.
``@pytest.mark.parametrize("amdgpu_sdma_queue", [{"sdma_engine": 1}], indirect=True)``;
``amdgpu_device`` accepts a device key, index or target the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .guard import CALL_FAILED_KEY, Guard, is_amdgpu_item, run_of
from .select import DeviceSlot, select_slots
from .session import AmdgpuRun, plan_run, release_object, skip_test


def _run(config: pytest.Config) -> AmdgpuRun:
    run = run_of(config)
    return run if run is not None else plan_run(config)


def _param_slot(run: AmdgpuRun, request: pytest.FixtureRequest) -> DeviceSlot:
    param = getattr(request, "param", None)
    if isinstance(param, DeviceSlot):
        return param
    if param is None:
        if hasattr(request, "param"):
            skip_test("no amdgpu device is selected for this run")
        local = run.local_slots or run.usable_slots
        if not local:
            skip_test("no amdgpu device is selected for this process")
        return local[0]
    try:
        hits = select_slots(run.slots, [str(param)], "amdgpu_device parameter")
    except pytest.UsageError as exc:
        skip_test(str(exc))
    return hits[0]


def _owner(request: pytest.FixtureRequest) -> str:
    return request.node.nodeid


def _kwargs(request: pytest.FixtureRequest) -> dict:
    param = getattr(request, "param", None)
    if param is None:
        return {}
    if not isinstance(param, dict):
        raise pytest.UsageError(f"{request.fixturename}: an indirect parameter must be a dict "
                                f"of keyword arguments, got {param!r}")
    return dict(param)


def _release_all(request: pytest.FixtureRequest, objects: list[Any]) -> None:
    """Release fixture-made objects, newest first; a failure is an error only if the test
    itself passed (a failing test often leaves the GPU in a state that refuses)."""
    errors = []
    for obj in reversed(objects):
        try:
            release_object(obj)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    objects.clear()
    if errors and not request.node.stash.get(CALL_FAILED_KEY, False):
        pytest.fail(f"{request.fixturename}: releasing at teardown failed: "
                    + "; ".join(errors), pytrace=False)


# --- devices ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def amdgpu_device(request: pytest.FixtureRequest) -> Any:
    """One GPU (a runtime ``Device``), opened once per worker session.

    Parametrized over the run's devices (``--amdgpu-sim`` targets or the selected GPUs), so a
    test using it runs once per device: ids ``gfx942``, ``gfx942-1``, ``gfx1100``, ….
    """
    run = _run(request.config)
    slot = _param_slot(run, request)
    return run.get_manager(request.config).device(slot)


@pytest.fixture(scope="session")
def amdgpu_devices(request: pytest.FixtureRequest) -> list[Any]:
    """Every device of this process (one KFD process), for multi-GPU tests: under xdist on
    hardware the worker's share of the GPUs, on the simulator every selected device of the
    worker's private simulated machine. Combine with ``@pytest.mark.amdgpu_min_devices(n)``."""
    run = _run(request.config)
    if not run.usable_slots:
        skip_test("no amdgpu device is selected for this process")
    return run.get_manager(request.config).all_devices()


# --- queues ----------------------------------------------------------------------------------

def _queue(kind: str, request: pytest.FixtureRequest, device: Any) -> Iterator[Any]:
    made: list[Any] = []
    kwargs = _kwargs(request)
    dev = kwargs.pop("device", None) or device
    made.append(dev.create_queue(kind, owner=_owner(request), **kwargs))
    yield made[0]
    _release_all(request, made)


@pytest.fixture
def amdgpu_pm4_queue(amdgpu_device: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A PM4 compute queue on ``amdgpu_device`` (destroyed at teardown)."""
    yield from _queue("pm4", request, amdgpu_device)


@pytest.fixture
def amdgpu_queue(amdgpu_device: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The PM4 compute queue: the same object as ``amdgpu_pm4_queue`` (or, when parametrized
    indirectly, a queue made with those arguments)."""
    if getattr(request, "param", None) is not None:
        yield from _queue("pm4", request, amdgpu_device)
    else:
        yield request.getfixturevalue("amdgpu_pm4_queue")


@pytest.fixture
def amdgpu_aql_queue(amdgpu_device: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """An AQL compute queue on ``amdgpu_device`` (destroyed at teardown)."""
    yield from _queue("aql", request, amdgpu_device)


@pytest.fixture
def amdgpu_sdma_queue(amdgpu_device: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """An SDMA queue on ``amdgpu_device`` (destroyed at teardown)."""
    yield from _queue("sdma", request, amdgpu_device)


# --- factories -------------------------------------------------------------------------------

@pytest.fixture
def amdgpu_buffer(amdgpu_device: Any, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., Any]]:
    """Factory: ``amdgpu_buffer(size, location="vram", *, device=None, **alloc_options)`` →
    ``Buffer`` ("vram", "gtt" or "userptr"); freed at teardown."""
    made: list[Any] = []

    def make(size: int, location: str = "vram", *, device: Any = None, **kwargs: Any) -> Any:
        dev = device or amdgpu_device
        kwargs.setdefault("owner", _owner(request))
        buf = dev.alloc(size, location, **kwargs)
        made.append(buf)
        return buf

    yield make
    _release_all(request, made)


@pytest.fixture
def amdgpu_signal(amdgpu_device: Any, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., Any]]:
    """Factory: ``amdgpu_signal(initial=0, *, interrupt=False, device=None)`` → ``Signal``;
    released at teardown."""
    made: list[Any] = []

    def make(initial: int = 0, *, device: Any = None, **kwargs: Any) -> Any:
        dev = device or amdgpu_device
        kwargs.setdefault("owner", _owner(request))
        sig = dev.create_signal(initial, **kwargs)
        made.append(sig)
        return sig

    yield make
    _release_all(request, made)


@pytest.fixture
def amdgpu_event(amdgpu_device: Any, request: pytest.FixtureRequest
                 ) -> Iterator[Callable[..., Any]]:
    """Factory: ``amdgpu_event(kind="signal", auto_reset=True, *, device=None)`` → ``Event``
    (a KFD event); destroyed at teardown."""
    made: list[Any] = []

    def make(kind: str = "signal", auto_reset: bool = True, *, device: Any = None,
             **kwargs: Any) -> Any:
        dev = device or amdgpu_device
        kwargs.setdefault("owner", _owner(request))
        ev = dev.create_event(kind, auto_reset, **kwargs)
        made.append(ev)
        return ev

    yield make
    _release_all(request, made)


def resolve_code_object(kernel: Any, target: str) -> tuple[Any, str | None]:
    """(code object for Device.load_kernel, kernel name hint) for a shipped kernel name, a
    path or bytes."""
    if isinstance(kernel, (bytes, bytearray, memoryview)):
        return bytes(kernel), None
    if isinstance(kernel, os.PathLike) or (isinstance(kernel, str) and (
            os.sep in kernel or kernel.endswith((".co", ".hsaco", ".elf"))
            or os.path.exists(kernel))):
        path = os.fspath(kernel)
        if not os.path.exists(path):
            raise FileNotFoundError(f"amdgpu_kernel: no code object at {path}")
        return path, None
    if not isinstance(kernel, str):
        return kernel, None          # a parsed code object: the runtime knows it
    from .. import kernels

    # a shipped kernel: prebuilt/<target>/<name>.co holds one kernel called <name>
    return kernels.path(kernel, target), kernel


@pytest.fixture
def amdgpu_kernel(amdgpu_device: Any, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., Any]]:
    """Factory: ``amdgpu_kernel(kernel, name=None, *, device=None, **load_options)`` → a loaded
    ``Kernel``. ``kernel`` is the name of a kernel shipped in ``pytest_amdgpu.kernels`` (built
    for the device's target), a code-object path, or code-object bytes; ``name`` picks the
    kernel symbol in a code object with several. Unloaded at teardown."""
    made: list[Any] = []

    def make(kernel: Any, name: str | None = None, *, device: Any = None,
             **options: Any) -> Any:
        dev = device or amdgpu_device
        code, hint = resolve_code_object(kernel, dev.name)
        kern = dev.load_kernel(code, name or hint, **options)
        made.append(kern)
        return kern

    yield make
    _release_all(request, made)


# --- a second process ------------------------------------------------------------------------

@pytest.fixture
def amdgpu_process(amdgpu_device: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A second KFD process on ``amdgpu_device``'s GPU, for isolation tests:
    ``run(fn, *args)`` calls ``fn(device, *args)`` there and returns its (picklable) result;
    ``start(fn, *args)`` runs ``fn(device, link, *args)`` concurrently and returns a task with
    ``send``, ``recv``, ``result`` and ``done``. A forked child on hardware, a second simulated
    process on the same simulated machine (see ``pytest_amdgpu.plugin.process``)."""
    from ..backends import get_backend
    from .process import OtherProcess

    run = _run(request.config)
    other = OtherProcess(amdgpu_device, get_backend(run.backend_name), run.options.timeout)
    yield other
    stopped = other.close()
    if stopped and not request.node.stash.get(CALL_FAILED_KEY, False):
        pytest.fail("; ".join(stopped), pytrace=False)


# --- the guard -------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _amdgpu_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Per-test accounting of amdgpu tests (leaks, health, report data); a no-op otherwise."""
    item = request.node
    run = run_of(request.config)
    if run is None or not isinstance(item, pytest.Item) or not is_amdgpu_item(item):
        yield
        return
    guard = Guard(run, request.config)
    rec = guard.setup(item)
    yield
    guard.teardown(item, rec)
