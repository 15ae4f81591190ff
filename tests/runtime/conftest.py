"""Fixtures of the runtime tests: every lifecycle test runs on the simulator and, where
/dev/kfd is usable, on the real driver (LinuxPort) — the same test code on both ports."""

from __future__ import annotations

import pytest

from pytest_amdgpu.backends import get_backend
from pytest_amdgpu.runtime import Device, open_device

SIM_TARGETS = ("gfx90a", "gfx942", "gfx1100")


def kfd_unusable() -> str | None:
    ok, why = get_backend("kfd").available()
    return None if ok else why


@pytest.fixture(params=["sim", "kfd"])
def backend(request) -> str:
    """"sim" everywhere; "kfd" (LinuxPort, /dev/kfd) only where a usable GPU exists."""
    if request.param == "kfd":
        why = kfd_unusable()
        if why:
            pytest.skip(f"LinuxPort needs a usable /dev/kfd: {why}")
    return request.param


def needs_cpu_visible_vram(dev: Device) -> None:
    """Skip on a small-BAR board, where the driver gives no CPU-mapped VRAM (EINVAL for
    VRAM | PUBLIC, facts-kfd.md §2.3 row 5)."""
    if not dev.large_bar:
        pytest.skip(f"{dev.describe()} is a small-BAR board: its VRAM cannot be CPU-mapped")


def open_on(backend: str, target: str = "gfx942", **kw) -> Device:
    """Open a device on `backend`; the simulator builds a machine of `target`."""
    if backend == "sim":
        return open_device("sim", target=target, **kw)
    return open_device(backend, **kw)


@pytest.fixture
def device(backend):
    dev = open_on(backend)
    yield dev
    dev.close()


@pytest.fixture(params=SIM_TARGETS)
def sim_device(request):
    """A simulated device of each target."""
    dev = open_device("sim", target=request.param)
    yield dev
    dev.close()


@pytest.fixture(params=[*(f"sim-{t}" for t in SIM_TARGETS), "kfd"])
def xdevice(request):
    """A device on every simulated target, and the real GPU where there is one."""
    if request.param == "kfd":
        why = kfd_unusable()
        if why:
            pytest.skip(f"LinuxPort needs a usable /dev/kfd: {why}")
        dev = open_device("kfd")
    else:
        dev = open_device("sim", target=request.param.split("-", 1)[1])
    yield dev
    dev.close()
