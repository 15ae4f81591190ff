"""The simulated GPU's engines: command processors (PM4, AQL), SDMA, the clock and the fault path.

`GPUEngine(device)` (engine.py) schedules one simulated device's queues; the driver model
(sim/device.py, sim/process.py) creates it and hands it queues, doorbells and evictions.
pm4.py, aql.py and sdma.py execute the packets of one queue each; dispatch.py turns register
state or an AQL packet into the shader core's DispatchRegs; fastdecode.py compiles field
readers from part D's packet layouts; clock.py is the 100 MHz GPU counter. Everything here
reads and writes GPU memory only through the process's `GPUVM`.
"""

from .clock import GPU_CLOCK_HZ, GPUClock
from .engine import GPUEngine

__all__ = ["GPU_CLOCK_HZ", "GPUClock", "GPUEngine"]
