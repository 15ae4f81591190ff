"""Errors raised by the shader core while running a dispatch.

The engine (sim/gpu) catches these and turns them into what the real stack reports: a
hardware-exception event for `ShaderException`, nothing for `DispatchCancelled` (the queue was
destroyed or the caller gave up). A VM fault surfaces as the VM's own `VMFault`.
"""

from __future__ import annotations

from ...errors import HWExceptionError


class ShaderException(HWExceptionError):
    """A wave hit an exception: an illegal / unimplemented instruction, s_trap, bad state.

    kind: "illegal_instruction" (an encoding the target does not have, an instruction the core
    does not implement, a register outside the wave's allocation), "trap" (s_trap; trap_id),
    "bad_dispatch" (register state no wave can start with) or "internal_error" (a simulator
    bug); pc is the byte address of the instruction; mnemonic and encoding name it (encoding as
    hex dwords, as llvm-objdump prints them). The engine maps kind to the KFD wave exception
    code (EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION, EC_QUEUE_WAVE_TRAP, else EC_QUEUE_WAVE_ABORT).
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
