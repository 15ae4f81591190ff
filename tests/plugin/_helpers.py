"""Small helpers shared by the plugin tests."""

from __future__ import annotations

import pytest

# A backend registered by a plugin: the simulator dressed up as hardware (simulated=False), so
# the hardware paths — topology listing, per-GPU locks — run without a GPU.
FAKE_GPU_CONFTEST = """
    import os
    from pytest_amdgpu.sim.port import SimPort

    def make_port(**options):
        return SimPort(sim=os.environ.get("FAKE_GPUS", "gfx942"),
                       record=options.get("record", False))

    def pytest_amdgpu_register_backends(register):
        register("fakegpu", make_port, lambda: (True, "a simulated stand-in"),
                 "the simulator posing as hardware", False)
"""


def text(result: pytest.RunResult) -> str:
    """Everything the subprocess printed."""
    return "\n".join(result.outlines + result.errlines)
