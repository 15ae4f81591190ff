"""Hooks that the `amdgpu` pytest plugin offers to other plugins and conftest files.

They are added with ``pytest_addhooks``, so any plugin or conftest can implement them:

- ``pytest_amdgpu_register_backends(register)`` (historic): add Port backends by name, usable
  with ``--amdgpu-backend=NAME``;
- ``pytest_amdgpu_select_devices(config, devices)`` (first result): choose the devices a run
  uses;
- ``pytest_amdgpu_device_unhealthy(device, reason)``: a device failed its health check;
- ``pytest_amdgpu_collect_artifacts(item, device, directory)``: a test failed, save more files.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(historic=True)
def pytest_amdgpu_register_backends(register) -> None:
    """Register backends (sources of Ports) with ``register``.

    ``register(backend)`` takes a :class:`pytest_amdgpu.backends.Backend`, or the same fields as
    arguments: ``register(name, make_port, available=None, description="", simulated=False,
    make_peer_port=None)``. ``make_peer_port(port, **options)`` is for backends whose devices a
    forked child cannot reach: ``amdgpu_process`` then runs its function in a thread on a peer
    port of the device's port instead of in a child process.
    A later registration of a name replaces the earlier one. The hook is historic: a plugin
    registered after the call is still asked.
    """


@hookspec(firstresult=True)
def pytest_amdgpu_select_devices(config, devices):
    """Choose the devices of this run.

    ``devices`` is the list of :class:`pytest_amdgpu.plugin.select.DeviceSlot` candidates left
    after ``--amdgpu-devices``. Return a list (a subset, in any order) to replace the selection,
    or None to keep it. Called once per run, on the xdist controller when there is one.
    """


@hookspec
def pytest_amdgpu_device_unhealthy(device, reason) -> None:
    """``device`` (a :class:`pytest_amdgpu.plugin.select.DeviceSlot`) failed its health check.

    ``reason`` says why. The device's remaining tests are skipped with that reason. Use this to
    power-cycle, reset or page someone.
    """


@hookspec
def pytest_amdgpu_collect_artifacts(item, device, directory) -> None:
    """A test that used ``device`` (a runtime Device) failed; write extra files to ``directory``.

    ``directory`` is a :class:`pathlib.Path` under ``--amdgpu-artifacts`` that already holds
    the ioctl trace, the decoded rings and the fault events of the test.
    """
