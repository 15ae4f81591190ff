"""Errors raised by the shader core while running a dispatch.

The engine (sim/gpu) catches these and turns them into what the real stack reports: a
hardware-exception event for `ShaderException`, nothing for `DispatchCancelled` (the queue was
destroyed or the caller gave up). A VM fault surfaces as the VM's own `VMFault`.
"""

from __future__ import annotations

from ...errors import HWExceptionError


class ShaderException(HWExceptionError):
    """A wave hit an exception: an illegal / unimplemented instruction, s_trap, bad state.

    kind: "illegal_instruction", "trap", "bad_dispatch" (register state the core cannot run),
    "vgpr_out_of_range", "memory_violation"; pc is the byte address of the instruction;
    mnemonic and encoding name it (encoding as hex dwords, as llvm-objdump prints them).
    """

    def __init__(self, kind: str, *, pc: int = 0, mnemonic: str = "", encoding: str = "",
                 message: str = "", trap_id: int | None = None, wave: int | None = None) -> None:
        self.kind = kind
        self.pc = pc
        self.mnemonic = mnemonic
        self.encoding = encoding
        self.trap_id = trap_id
        self.wave = wave
        self.message = message or f"{kind} at PC 0x{pc:x}: {mnemonic} ({encoding})"
        super().__init__(self.message)


class DispatchCancelled(Exception):
    """The dispatch was cancelled (`cancel` event set) before it finished."""
