"""Fixtures of the simulated-driver tests (see helpers.py)."""

from __future__ import annotations

import pytest

from pytest_amdgpu.sim.machine import SimMachine
from pytest_amdgpu.sim.port import SimPort

from .helpers import Env, StubEngine


@pytest.fixture
def stub_machine():
    """A gfx942 machine whose engines only record calls (no packet execution)."""
    m = SimMachine("gfx942", engine_factory=StubEngine)
    yield m
    m.close()


@pytest.fixture
def kfd_env(stub_machine):
    port = SimPort(stub_machine)
    e = Env(port)
    yield e
    port.close_port()
