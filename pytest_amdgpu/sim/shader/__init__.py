"""The simulated shader core: instruction decoding and wave execution.

Public pieces: `ShaderCore(target).run(vm, regs, cancel=, clock=)` runs one dispatch;
`DispatchRegs` is the register-level dispatch state; `ShaderException` / `DispatchCancelled`
are what a dispatch can end with besides a VMFault; `Decoder` and `Disassembler` turn machine
code into `Inst` objects and llvm-objdump-style text.
"""

from .core import ShaderCore
from .decoder import Decoder, Inst
from .disasm import Disassembler, disassemble_words
from .dispatch import DispatchRegs
from .errors import DispatchCancelled, ShaderException

__all__ = ["Decoder", "Disassembler", "DispatchCancelled", "DispatchRegs", "Inst", "ShaderCore",
           "ShaderException", "disassemble_words"]
