"""Fixtures of the engine tests: a simulated KFD process per test, for each target."""

from __future__ import annotations

import pytest

from .rig import Rig

TARGETS = ("gfx90a", "gfx942", "gfx1100")


@pytest.fixture(params=TARGETS)
def rig(request):
    """A KFD process (SimPort) on a fresh simulated machine of each target."""
    r = Rig(request.param)
    yield r
    r.close()


@pytest.fixture
def rig942():
    """A KFD process on a gfx942 machine (tests whose subject does not vary by target)."""
    r = Rig("gfx942")
    yield r
    r.close()
