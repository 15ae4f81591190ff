"""PM4 type-3 packets for the compute command processor (MEC): build, parse, render.

Facts (opcodes, bit ranges, enums) come from the kernel's soc15d.h (gfx9) and nvd.h (gfx10+),
kfdtest's PM4 structs and kfd_pm4_headers_ai.h; see shared/reference/facts-pm4.md for every
value and its sources. Per-target forms (RELEASE_MEM cache bits, ACQUIRE_MEM length, register
offsets) come from the Target table.

Header (facts-pm4.md §1.1): ``[31:30]`` type 3, ``[29:16]`` COUNT = body dwords - 1,
``[15:8]`` opcode, ``[1]`` shader type (1 = compute), ``[0]`` predicate. A NOP with COUNT 0x3FFF
is one dword long (``0xFFFF1000``, the kernel's ring ``.nop``).

Usage::

    words = WaitRegMem(addr=0x1_00002000, function=">=", reference=0x10).encode(target)
    packet, length = decode(words, 0, target)
    print(format_stream(ring_window, target, start_offset=rptr, mark=rptr))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from ..errors import PacketError
from ..targets.table import Target
from .common import (
    CACHE_POLICY_NAMES,
    TC_OP_NAMES,
    Field,
    Layout,
    Packet,
    PacketDecodeError,
    Part,
    _Reserved,
    addr,
    as_words,
    bits,
    flag,
    format_dword_stream,
    hex_list,
    iter_dwords,
    render_flags,
    resolve_target,
    u32,
    u64,
)

__all__ = [
    "ATOMIC_COMMAND_NAMES", "COHER_CNTL_BITS", "COMPARE_FUNCTION_NAMES", "EVENT_TYPE_NAMES",
    "GCR_CNTL_BITS", "INITIATOR_BITS", "OPCODE_NAMES", "SH_REG_WINDOW", "AcquireMem", "AtomicMem",
    "CompareFunction", "CopyData", "DataSel", "DispatchDirect", "DmaData", "EventType",
    "EventWrite", "IndirectBuffer", "IntSel", "MemSpace", "Nop", "Op", "PM4_NOP_1DW",
    "Pm4Packet", "PredExec", "ReleaseMem", "SetShReg", "SetUconfigReg", "Type2", "WaitRegMem",
    "WriteData", "decode", "format_stream", "header", "iter_packets", "parse_header",
]

PM4_NOP_1DW = 0xFFFF1000          # PACKET3(NOP, 0x3FFF): the one-dword NOP (facts-pm4.md G1)
TYPE2_FILLER = 0x80000000          # CP_PACKET2 (soc15d.h / nvd.h)
SH_REG_WINDOW = (0x2C00, 0x3000)   # PACKET3_SET_SH_REG_START / _END (absolute dword addresses)
UCONFIG_REG_WINDOW = (0xC000, 0xC400)


class Op(IntEnum):
    """IT_OPCODE values of the packets this module models (facts-pm4.md §2)."""

    NOP = 0x10
    DISPATCH_DIRECT = 0x15
    ATOMIC_MEM = 0x1E
    PRED_EXEC = 0x23
    WRITE_DATA = 0x37
    WAIT_REG_MEM = 0x3C
    INDIRECT_BUFFER = 0x3F
    COPY_DATA = 0x40
    EVENT_WRITE = 0x46
    RELEASE_MEM = 0x49
    DMA_DATA = 0x50
    ACQUIRE_MEM = 0x58
    SET_SH_REG = 0x76
    SET_UCONFIG_REG = 0x79


# Every opcode named in soc15d.h / nvd.h that matters for messages (facts-pm4.md §2).
OPCODE_NAMES: dict[int, str] = {
    0x10: "NOP", 0x11: "SET_BASE", 0x12: "CLEAR_STATE", 0x13: "INDEX_BUFFER_SIZE",
    0x15: "DISPATCH_DIRECT", 0x16: "DISPATCH_INDIRECT", 0x17: "INDIRECT_BUFFER_END",
    0x19: "INDIRECT_BUFFER_CNST_END", 0x1D: "ATOMIC_GDS", 0x1E: "ATOMIC_MEM",
    0x1F: "OCCLUSION_QUERY", 0x20: "SET_PREDICATION", 0x21: "REG_RMW", 0x22: "COND_EXEC",
    0x23: "PRED_EXEC", 0x24: "DRAW_INDIRECT", 0x25: "DRAW_INDEX_INDIRECT", 0x26: "INDEX_BASE",
    0x27: "DRAW_INDEX_2", 0x28: "CONTEXT_CONTROL", 0x2A: "INDEX_TYPE",
    0x2C: "DRAW_INDIRECT_MULTI", 0x2D: "DRAW_INDEX_AUTO", 0x2F: "NUM_INSTANCES",
    0x30: "DRAW_INDEX_MULTI_AUTO", 0x32: "INDIRECT_BUFFER_PRIV", 0x33: "INDIRECT_BUFFER_CNST",
    0x34: "STRMOUT_BUFFER_UPDATE", 0x35: "DRAW_INDEX_OFFSET_2", 0x36: "DRAW_PREAMBLE",
    0x37: "WRITE_DATA", 0x38: "DRAW_INDEX_INDIRECT_MULTI", 0x39: "MEM_SEMAPHORE",
    0x3A: "DRAW_INDEX_MULTI_INST", 0x3B: "COPY_DW", 0x3C: "WAIT_REG_MEM",
    0x3F: "INDIRECT_BUFFER", 0x40: "COPY_DATA", 0x41: "CP_DMA", 0x42: "PFP_SYNC_ME",
    0x43: "SURFACE_SYNC", 0x44: "ME_INITIALIZE", 0x45: "COND_WRITE", 0x46: "EVENT_WRITE",
    0x47: "EVENT_WRITE_EOP", 0x48: "EVENT_WRITE_EOS", 0x49: "RELEASE_MEM",
    0x4A: "PREAMBLE_CNTL", 0x50: "DMA_DATA", 0x51: "CONTEXT_REG_RMW", 0x52: "GFX_CNTX_UPDATE",
    0x53: "BLK_CNTX_UPDATE", 0x55: "INCR_UPDT_STATE", 0x58: "ACQUIRE_MEM", 0x59: "REWIND",
    0x5A: "INTERRUPT", 0x5B: "GEN_PDEPTE", 0x5C: "INDIRECT_BUFFER_PASID", 0x5D: "PRIME_UTCL2",
    0x5E: "LOAD_UCONFIG_REG", 0x5F: "LOAD_SH_REG", 0x60: "LOAD_CONFIG_REG",
    0x61: "LOAD_CONTEXT_REG", 0x62: "LOAD_COMPUTE_STATE", 0x63: "LOAD_SH_REG_INDEX",
    0x68: "SET_CONFIG_REG", 0x69: "SET_CONTEXT_REG", 0x6A: "SET_CONTEXT_REG_INDEX",
    0x73: "SET_CONTEXT_REG_INDIRECT", 0x76: "SET_SH_REG", 0x77: "SET_SH_REG_OFFSET",
    0x78: "SET_QUEUE_REG", 0x79: "SET_UCONFIG_REG", 0x7A: "SET_UCONFIG_REG_INDEX",
    0x7D: "SCRATCH_RAM_WRITE", 0x7E: "SCRATCH_RAM_READ", 0x80: "LOAD_CONST_RAM",
    0x81: "WRITE_CONST_RAM", 0x83: "DUMP_CONST_RAM", 0x84: "INCREMENT_CE_COUNTER",
    0x85: "INCREMENT_DE_COUNTER", 0x86: "WAIT_ON_CE_COUNTER", 0x88: "WAIT_ON_DE_COUNTER_DIFF",
    0x8B: "SWITCH_BUFFER", 0x90: "FRAME_CONTROL", 0x93: "WAIT_REG_MEM64", 0x95: "HDP_FLUSH",
    0x98: "INVALIDATE_TLBS", 0x99: "AQL_PACKET", 0x9B: "SET_SH_REG_INDEX",
    0xA0: "SET_RESOURCES", 0xA1: "MAP_PROCESS", 0xA2: "MAP_QUEUES", 0xA3: "UNMAP_QUEUES",
    0xA4: "QUERY_STATUS", 0xA5: "RUN_LIST", 0xD2: "RUN_CLEANER_SHADER",
}


class CompareFunction(IntEnum):
    """WAIT_REG_MEM FUNCTION (soc15d.h WAIT_REG_MEM_FUNCTION comment): ``(value & mask) OP ref``."""

    ALWAYS = 0
    LT = 1
    LE = 2
    EQ = 3
    NE = 4
    GE = 5
    GT = 6


COMPARE_FUNCTION_NAMES = {0: "always", 1: "<", 2: "<=", 3: "==", 4: "!=", 5: ">=", 6: ">"}


class MemSpace(IntEnum):
    REGISTER = 0
    MEMORY = 1


class DataSel(IntEnum):
    """RELEASE_MEM DATA_SEL (facts-pm4.md §3.3)."""

    NONE = 0
    DATA32 = 1
    DATA64 = 2
    GPU_CLOCK = 3
    PERFCOUNTER = 4
    GDS = 5


class IntSel(IntEnum):
    """RELEASE_MEM INT_SEL (kfd_pm4_headers_ai.h mec_release_mem_int_sel_enum)."""

    NONE = 0
    INTERRUPT_ONLY = 1
    INTERRUPT_AFTER_WRITE_CONFIRM = 2
    DATA_AFTER_WRITE_CONFIRM = 3
    UNCONDITIONAL_INT_CTXID = 4
    INT_CTXID_IF_32BIT_COMPARE = 5
    INT_CTXID_IF_64BIT_COMPARE = 6


class EventType(IntEnum):
    """VGT_EVENT_TYPE values used by compute (vega10_enum.h / soc21_enum.h)."""

    CACHE_FLUSH_TS = 0x04
    CACHE_FLUSH = 0x06
    CS_PARTIAL_FLUSH = 0x07
    VS_PARTIAL_FLUSH = 0x0F
    PS_PARTIAL_FLUSH = 0x10
    CACHE_FLUSH_AND_INV_TS_EVENT = 0x14
    CACHE_FLUSH_AND_INV_EVENT = 0x16
    CS_CONTEXT_DONE = 0x23
    BOTTOM_OF_PIPE_TS = 0x28
    CS_DONE = 0x2F
    PS_DONE = 0x30


EVENT_TYPE_NAMES = {e.value: e.name for e in EventType}

_EVENT_WRITE_INDEX = {0: "other", 1: "zpass_done", 2: "sample_pipelinestat",
                      3: "sample_streamoutstat", 4: "partial_flush", 5: "eop", 6: "eos",
                      7: "cache_flush", 8: "sample_streamoutstats", 9: "sample_streamoutstats1",
                      10: "sample_streamoutstats2", 11: "sample_streamoutstats3"}
_RELEASE_MEM_INDEX = {5: "eop", 6: "eos", 7: "aql"}
_ENGINE_ME_PFP = {0: "me", 1: "pfp"}
_ENGINE_ME_PFP_CE = {0: "me", 1: "pfp", 2: "ce"}

ATOMIC_COMMAND_NAMES = {0: "single_pass", 1: "loop_until_compare", 2: "wait_write_confirm",
                        3: "send_and_continue"}

# CP_COHER_CNTL bits used in the gfx9 ACQUIRE_MEM (soc15d.h PACKET3_ACQUIRE_MEM_CP_COHER_CNTL_*).
COHER_CNTL_BITS = {3: "TC_NC", 4: "TC_WC", 5: "TC_INV_METADATA", 15: "TCL1_VOL", 18: "TC_WB",
                   22: "TCL1", 23: "TC", 25: "CB", 26: "DB", 27: "SH_KCACHE",
                   28: "SH_KCACHE_VOL", 29: "SH_ICACHE", 30: "SH_KCACHE_WB"}
# GCR_CNTL of the gfx10+ ACQUIRE_MEM (nvd.h PACKET3_ACQUIRE_MEM_GCR_CNTL_*).
GCR_CNTL_BITS = {4: "GLM_WB", 5: "GLM_INV", 6: "GLK_WB", 7: "GLK_INV", 8: "GLV_INV",
                 9: "GL1_INV", 10: "GL2_US", 13: "GL2_DISCARD", 14: "GL2_INV", 15: "GL2_WB",
                 18: "RANGE_IS_PA"}
_GCR_CNTL_MULTI = {"GLI_INV": (0, 2), "GL1_RANGE": (2, 2), "GL2_RANGE": (11, 2), "SEQ": (16, 2)}

# COMPUTE_DISPATCH_INITIATOR bits (gc_9_4_2 / gc_11_0_0 sh_mask; facts-pm4.md §4.2). CS_W32_EN is
# taken from the Target (dispatch_initiator_wave32), gfx11-only bits are named for every target
# because the decoder cannot know which producer set them.
INITIATOR_BITS = {0: "COMPUTE_SHADER_EN", 1: "PARTIAL_TG_EN", 2: "FORCE_START_AT_000",
                  3: "ORDERED_APPEND_ENBL", 4: "ORDERED_APPEND_MODE", 5: "USE_THREAD_DIMENSIONS",
                  6: "ORDER_MODE", 10: "SCALAR_L1_INV_VOL", 11: "VECTOR_L1_INV_VOL",
                  12: "DATA_ATC", 13: "TUNNEL_ENABLE", 14: "RESTORE", 16: "AMP_SHADER_EN",
                  17: "DISABLE_DISP_PREMPT_EN"}


def header(opcode: int, count: int, *, shader_type: int = 0, predicate: int = 0) -> int:
    """A type-3 header: ``PACKET3(op, count)`` plus the shader-type and predicate bits."""
    if not 0 <= opcode <= 0xFF or not 0 <= count <= 0x3FFF:
        raise PacketError(f"PM4 header: opcode {opcode:#x} or count {count:#x} out of range")
    return (3 << 30) | (count << 16) | (opcode << 8) | ((shader_type & 1) << 1) | (predicate & 1)


def parse_header(h: int) -> tuple[int, int, int, int, int]:
    """(type, count, opcode, shader_type, predicate) of a PM4 header dword."""
    return h >> 30, (h >> 16) & 0x3FFF, (h >> 8) & 0xFF, (h >> 1) & 1, h & 1


# ---------------------------------------------------------------------------------------------
# Packet classes

_HDR_FIELDS = (flag("predicate", 0, 0, label="pred"), flag("shader_type", 0, 1, label="compute"))


@dataclass(frozen=True, kw_only=True)
class Pm4Packet(Packet):
    """Base of the type-3 packets: the header's shader-type and predicate bits."""

    shader_type: int = 0
    predicate: int = 0

    OPCODE: ClassVar[int] = -1
    FORM_ATTR: ClassVar[str | None] = None   # Target attribute that selects the layout

    @classmethod
    def form_for(cls, target: Target | str | None) -> str | None:
        if cls.FORM_ATTR is None:
            return None
        return getattr(resolve_target(target, cls.__name__), cls.FORM_ATTR)

    def _layout(self, target: Target | str | None) -> Layout:
        return self.layouts(self.form_for(target))[0]

    def render(self, target: Target | str | None = None) -> str:
        """``MNEMONIC field=value …`` as in a ring dump."""
        lay = self._layout(target)
        return " ".join([self.MNEMONIC, *self._render_items(lay, target)])

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        return lay.render_items(self)

    def __str__(self) -> str:
        try:
            return self.render(None)
        except PacketError:
            return repr(self)


def _pm4(cls: type[Pm4Packet], fields: Sequence[Field], body: int, *, tail: str | None = None,
         tail_min: int = 0, note: str = "") -> Layout:
    return Layout(cls.MNEMONIC, cls, (*_HDR_FIELDS, *fields), 1 + body,
                  const={0: 0xC0000000 | (cls.OPCODE << 8)}, tail=tail, tail_min=tail_min,
                  tail_max=0x3FFF - body, length=(0, 16, 14, -2), note=note)


@dataclass(frozen=True, kw_only=True)
class Nop(Pm4Packet):
    """NOP: ``body`` is ignored by the CP. An empty body is the one-dword ``0xFFFF1000`` form."""

    body: tuple[int, ...] = ()

    OPCODE = 0x10
    MNEMONIC = "NOP"
    _TUPLE_FIELDS = ("body",)

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        short = Layout("NOP", cls, _HDR_FIELDS, 1, const={0: PM4_NOP_1DW})
        long = _pm4(cls, (), 0, tail="body", tail_min=1)
        return [short, long]

    @classmethod
    def of_size(cls, ndw: int, fill: int = 0) -> Nop:
        """A NOP that occupies exactly ``ndw`` dwords (ring padding)."""
        if not 1 <= ndw <= 0x4000:
            raise PacketError(f"NOP: cannot pad {ndw} dwords with one packet (1..16384)")
        return cls(body=(fill,) * (ndw - 1))

    def _layout(self, target: Target | str | None) -> Layout:
        short, long = self.layouts(None)
        return long if self.body else short

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        items = lay.render_items(self)
        if self.body:
            items.append(f"({len(self.body) + 1} dwords)")
        return items


@dataclass(frozen=True, kw_only=True)
class Type2:
    """Type-2 filler dword (``CP_PACKET2`` = 0x80000000; bits [29:0] are padding)."""

    pad: int = 0

    MNEMONIC: ClassVar[str] = "TYPE2"

    def encode(self, target: Target | str | None = None) -> list[int]:
        if not 0 <= self.pad < 1 << 30:
            raise PacketError(f"TYPE2: pad={self.pad:#x} does not fit bits [29:0]")
        return [TYPE2_FILLER | self.pad]

    def render(self, target: Target | str | None = None) -> str:
        return "TYPE2 filler" + (f" pad={self.pad:#x}" if self.pad else "")


_WRITE_DATA_DST = {0: "reg", 1: "mem_grbm", 2: "tc_l2", 3: "gds", 5: "mem", 6: "mem_adc"}


@dataclass(frozen=True, kw_only=True)
class WriteData(Pm4Packet):
    """WRITE_DATA (0x37): write ``data`` dwords to memory (``addr``) or a register (``addr`` =
    register dword offset when ``dst_sel`` = 0)."""

    addr: int
    data: tuple[int, ...]
    dst_sel: int = 5
    wr_one_addr: int = 0
    resume_vf: int = 0
    wr_confirm: int = 0
    cache_policy: int = 0
    engine_sel: int = 0

    OPCODE = 0x37
    MNEMONIC = "WRITE_DATA"
    _TUPLE_FIELDS = ("data",)

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            bits("dst_sel", 1, 11, 8, names=_WRITE_DATA_DST, strict=True, label="dst",
                 show="always"),
            flag("wr_one_addr", 1, 16),
            flag("resume_vf", 1, 19),
            flag("wr_confirm", 1, 20),
            bits("cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            bits("engine_sel", 1, 31, 30, names=_ENGINE_ME_PFP_CE, label="engine"),
            u64("addr", 2, show="always"),
        ), 3, tail="data", tail_min=1)]

    def _check(self, target: Target | str | None) -> None:
        if self.dst_sel in (1, 2, 5) and self.addr & 3:
            raise PacketError(f"WRITE_DATA: addr={self.addr:#x} must be dword aligned for a "
                              f"memory destination (DST_MEM_ADDR_LO is [31:2])")

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        return [*lay.render_items(self), f"data={hex_list(self.data)}"]


_WAIT_OPERATION = {0: "wait_reg_mem", 1: "wr_wait_wr_reg", 3: "wait_mem_preemptable"}


@dataclass(frozen=True, kw_only=True)
class WaitRegMem(Pm4Packet):
    """WAIT_REG_MEM (0x3C): wait until ``(value & mask) function reference``.

    In memory space ``addr`` is the byte address polled; in register space its low dword is
    the register offset polled (REG_POLL_ADDR) and its high dword the second register written by
    operation 1 (REG_WRITE_ADDR2).
    """

    addr: int
    reference: int
    function: int = CompareFunction.EQ
    mask: int = 0xFFFFFFFF
    mem_space: int = MemSpace.MEMORY
    operation: int = 0
    engine_sel: int = 0
    mes_intr_pipe: int = 0
    mes_action: int = 0
    cache_policy: int = 0
    poll_interval: int = 4
    optimize_ace_offload_mode: int = 0

    OPCODE = 0x3C
    MNEMONIC = "WAIT_REG_MEM"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            bits("function", 1, 2, 0, names=COMPARE_FUNCTION_NAMES, strict=True, label="func",
                 show="always"),
            bits("mem_space", 1, 5, 4, names={0: "reg", 1: "mem"}, strict=True, show="never"),
            bits("operation", 1, 7, 6, names=_WAIT_OPERATION, strict=True, label="op"),
            flag("engine_sel", 1, 8, names=_ENGINE_ME_PFP, label="engine"),
            bits("mes_intr_pipe", 1, 23, 22),
            flag("mes_action", 1, 24),
            bits("cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            u64("addr", 2, show="never"),
            u32("reference", 4, label="ref", show="always"),
            u32("mask", 5, show="always"),
            bits("poll_interval", 6, 15, 0, fmt="dec", label="poll", show="always"),
            flag("optimize_ace_offload_mode", 6, 31, label="ace_offload"),
        ), 6)]

    def _check(self, target: Target | str | None) -> None:
        if self.mem_space == 1 and self.addr & 3:
            raise PacketError(f"WAIT_REG_MEM: addr={self.addr:#x} must be dword aligned "
                              f"(MEM_POLL_ADDR_LO is [31:2])")
        if self.mem_space == 0 and (self.addr & 0xFFFFFFFF) >> 18:
            raise PacketError(f"WAIT_REG_MEM: register offset {self.addr & 0xFFFFFFFF:#x} does "
                              f"not fit REG_POLL_ADDR [17:0]")

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        if self.mem_space == 1:
            where = ["mem", f"addr={self.addr:#x}"]
        else:
            where = [f"reg{self.mem_space}" if self.mem_space > 1 else "reg",
                     f"reg={self.addr & 0xFFFFFFFF:#x}"]
            if self.addr >> 32:
                where.append(f"reg2={self.addr >> 32:#x}")
        return [*where, *lay.render_items(self)]


@dataclass(frozen=True, kw_only=True)
class IndirectBuffer(Pm4Packet):
    """INDIRECT_BUFFER (0x3F): run ``ib_size`` dwords at ``addr``; ``chain`` replaces the rest
    of the current buffer instead of returning to it. VALID (bit 23) must be 1."""

    addr: int
    ib_size: int
    valid: int = 1
    chain: int = 0
    vmid: int = 0
    swap: int = 0
    offload_polling: int = 0
    volatile: int = 0
    cache_policy: int = 0
    pre_resume: int = 0
    priv: int = 0

    OPCODE = 0x3F
    MNEMONIC = "INDIRECT_BUFFER"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            bits("swap", 1, 1, 0),
            addr("addr", 1, 2, show="always"),
            bits("ib_size", 3, 19, 0, fmt="dec", label="size", show="always"),
            flag("chain", 3, 20),
            flag("offload_polling", 3, 21),
            flag("volatile", 3, 22),
            flag("valid", 3, 23, show="always"),
            bits("vmid", 3, 27, 24, fmt="dec"),
            bits("cache_policy", 3, 29, 28),
            flag("pre_resume", 3, 30),
            flag("priv", 3, 31),
        ), 3)]


@dataclass(frozen=True, kw_only=True)
class EventWrite(Pm4Packet):
    """EVENT_WRITE (0x46): one body dword, or three when ``addr`` is given (events that write
    memory; ADDRESS_LO is [31:3], so the address is 8-byte aligned)."""

    event_type: int
    event_index: int = 0
    samp_plst_cntr_mode: int = 0
    offload_enable: int = 0
    addr: int | None = None

    OPCODE = 0x46
    MNEMONIC = "EVENT_WRITE"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        dw1 = (
            bits("event_type", 1, 5, 0, names=EVENT_TYPE_NAMES, label="event", show="always"),
            bits("event_index", 1, 11, 8, names=_EVENT_WRITE_INDEX, label="index",
                 show="always"),
            bits("samp_plst_cntr_mode", 1, 30, 29),
            flag("offload_enable", 1, 31),   # S15 bit 31 (nvd.h's bit 0 overlaps EVENT_TYPE)
        )
        return [_pm4(cls, dw1, 1), _pm4(cls, (*dw1, addr("addr", 2, 3, show="always")), 3)]

    def _layout(self, target: Target | str | None) -> Layout:
        short, long = self.layouts(None)
        return short if self.addr is None else long


_RELEASE_DST = {0: "mc", 1: "tc_l2", 2: "queue_wptr", 3: "queue_wptr_poll_mask"}
_DATA_SEL = {0: "none", 1: "32bit", 2: "64bit", 3: "gpu_clock", 4: "perfcounter", 5: "gds"}
_INT_SEL = {0: "none", 1: "int_only", 2: "int_after_confirm", 3: "data_after_confirm",
            4: "int_ctxid", 5: "int_ctxid_cmp32", 6: "int_ctxid_cmp64"}


@dataclass(frozen=True, kw_only=True)
class ReleaseMem(Pm4Packet):
    """RELEASE_MEM (0x49): at an end-of-pipe event write data / a timestamp, raise an interrupt.

    Cache actions differ by family (Target.release_mem_form): the gfx9 form has ``tc_*``/
    ``tcl1_*`` action bits, the gfx10+ form ``gcr_*`` GCR bits (nvd.h). ``execute`` is
    bits [29:28] in both forms: soc15d.h EOP_EXEC is bit 28, kfd_pm4_headers_ai.h pq_exe_status
    is bit 29 (facts-pm4.md §8 #1). ``data`` is DATA_LO | DATA_HI << 32 (or CMP_DATA).
    """

    addr: int = 0
    data: int = 0
    data_sel: int = DataSel.NONE
    int_sel: int = IntSel.NONE
    dst_sel: int = 0
    int_ctxid: int = 0
    event_type: int = EventType.CACHE_FLUSH_AND_INV_TS_EVENT
    event_index: int = 5
    cache_policy: int = 0
    execute: int = 0
    # gfx9 form (soc15d.h EOP_*, kfd_pm4_headers_ai.h)
    tcl1_vol_action_en: int = 0
    tc_vol_action_en: int = 0
    tc_wb_action_en: int = 0
    tcl1_action_en: int = 0
    tc_action_en: int = 0
    tc_nc_action_en: int = 0
    tc_wc_action_en: int = 0
    tc_md_action_en: int = 0
    # gfx10+ form (nvd.h PACKET3_RELEASE_MEM_GCR_*)
    gcr_glm_wb: int = 0
    gcr_glm_inv: int = 0
    gcr_glv_inv: int = 0
    gcr_gl1_inv: int = 0
    gcr_gl2_us: int = 0
    gcr_gl2_range: int = 0
    gcr_gl2_discard: int = 0
    gcr_gl2_inv: int = 0
    gcr_gl2_wb: int = 0
    gcr_seq: int = 0

    OPCODE = 0x49
    MNEMONIC = "RELEASE_MEM"
    FORM_ATTR = "release_mem_form"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        if form == "gfx9":
            cache = (
                flag("tcl1_vol_action_en", 1, 12, label="tcl1_vol"),
                flag("tc_vol_action_en", 1, 13, label="tc_vol"),
                flag("tc_wb_action_en", 1, 15, label="tc_wb"),
                flag("tcl1_action_en", 1, 16, label="tcl1"),
                flag("tc_action_en", 1, 17, label="tc"),
                flag("tc_nc_action_en", 1, 19, label="tc_nc"),
                flag("tc_wc_action_en", 1, 20, label="tc_wc"),
                flag("tc_md_action_en", 1, 21, label="tc_md"),
            )
        elif form == "gfx10":
            cache = (
                flag("gcr_glm_wb", 1, 12, label="glm_wb"),
                flag("gcr_glm_inv", 1, 13, label="glm_inv"),
                flag("gcr_glv_inv", 1, 14, label="glv_inv"),
                flag("gcr_gl1_inv", 1, 15, label="gl1_inv"),
                flag("gcr_gl2_us", 1, 16, label="gl2_us"),
                bits("gcr_gl2_range", 1, 18, 17, label="gl2_range"),
                flag("gcr_gl2_discard", 1, 19, label="gl2_discard"),
                flag("gcr_gl2_inv", 1, 20, label="gl2_inv"),
                flag("gcr_gl2_wb", 1, 21, label="gl2_wb"),
                bits("gcr_seq", 1, 23, 22, label="seq"),
            )
        else:
            raise PacketError(f"RELEASE_MEM: unknown release_mem_form {form!r}")
        return [_pm4(cls, (
            bits("event_type", 1, 5, 0, names=EVENT_TYPE_NAMES, label="event", show="always"),
            bits("event_index", 1, 11, 8, names=_RELEASE_MEM_INDEX, label="index",
                 show="always"),
            *cache,
            bits("cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            bits("execute", 1, 29, 28),
            bits("dst_sel", 2, 17, 16, names=_RELEASE_DST, label="dst"),
            bits("int_sel", 2, 26, 24, names=_INT_SEL, strict=True, show="always"),
            bits("data_sel", 2, 31, 29, names=_DATA_SEL, strict=True, show="always"),
            u64("addr", 3, show="always"),
            u64("data", 5),
            u32("int_ctxid", 7),
        ), 7, note=f"target uses the {form} RELEASE_MEM form")]

    @classmethod
    def fence(cls, target: Target | str, addr: int, value: int, *, bits: int = 64,
              interrupt: bool = False, int_ctxid: int = 0, **fields: Any) -> ReleaseMem:
        """End-of-pipe write of ``value`` (32 or 64 bits) at ``addr`` with the kernel's fence
        cache flush for the target's form, optionally followed by an interrupt
        (INT_SEL 2: after the write is confirmed)."""
        if bits not in (32, 64):
            raise PacketError(f"RELEASE_MEM fence: bits={bits}; use 32 or 64")
        form = cls.form_for(target)
        kw: dict[str, Any] = dict(_FENCE_FLUSH[form])
        kw.update(event_type=EventType.CACHE_FLUSH_AND_INV_TS_EVENT, event_index=5,
                  data_sel=DataSel.DATA64 if bits == 64 else DataSel.DATA32,
                  int_sel=IntSel.INTERRUPT_AFTER_WRITE_CONFIRM if interrupt else IntSel.NONE,
                  addr=addr, data=value, int_ctxid=int_ctxid)
        kw.update(fields)
        return cls(**kw)

    def _check(self, target: Target | str | None) -> None:
        if self.dst_sel in (0, 1):
            align = 4 if self.data_sel == 1 else 8 if self.data_sel in (2, 3, 4) else 1
            if self.addr % align:
                raise PacketError(f"RELEASE_MEM: addr={self.addr:#x} must be {align}-byte "
                                  f"aligned for data_sel={self.data_sel}")


# The kernel's fence cache actions per RELEASE_MEM form (facts-pm4.md G5/G6):
# gfx_v9_0_ring_emit_fence: TCL1 | TC | TC_WB | TC_MD; gfx_v11_0_ring_emit_fence: GCR GLM_WB |
# GLM_INV | GL2_WB | SEQ with CACHE_POLICY 3.
_FENCE_FLUSH: dict[str | None, dict[str, int]] = {
    "gfx9": {"tcl1_action_en": 1, "tc_action_en": 1, "tc_wb_action_en": 1, "tc_md_action_en": 1},
    "gfx10": {"gcr_glm_wb": 1, "gcr_glm_inv": 1, "gcr_gl2_wb": 1, "gcr_seq": 1, "cache_policy": 3},
}
# kfdtest's full-range invalidate per ACQUIRE_MEM form (facts-pm4.md G12): gfx9 COHER_CNTL
# SH_ICACHE | SH_KCACHE | TC | TCL1; gfx10+ GCR_CNTL GL2_INV | GL1_INV | GLV_INV | GLK_INV |
# GLI_INV=ALL.
_INVALIDATE_ALL: dict[str | None, dict[str, int]] = {
    "gfx9": {"coher_cntl": 0x28C00000},
    "gfx10": {"gcr_cntl": 0x4381},
}


@dataclass(frozen=True, kw_only=True)
class AcquireMem(Pm4Packet):
    """ACQUIRE_MEM (0x58): cache invalidate/writeback over a range.

    gfx9 form (6 body dwords): COHER_CNTL in body dword 1. gfx10+ form (7 body dwords): the
    same first six dwords (dword 1 is written 0) plus GCR_CNTL. ``coher_size`` is
    COHER_SIZE | COHER_SIZE_HI[7:0] << 32, ``coher_base`` COHER_BASE_LO | COHER_BASE_HI[23:0] << 32.
    """

    coher_cntl: int = 0
    engine_sel: int = 0
    coher_size: int = 0xFFFFFFFF
    coher_base: int = 0
    poll_interval: int = 4
    gcr_cntl: int = 0

    OPCODE = 0x58
    MNEMONIC = "ACQUIRE_MEM"
    FORM_ATTR = "acquire_mem_form"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        common = (
            bits("coher_cntl", 1, 30, 0, show="never"),
            flag("engine_sel", 1, 31, label="engine"),
            Field("coher_size", [Part(2, 0, 32, 0), Part(3, 0, 8, 32)], label="size",
                  show="always"),
            Field("coher_base", [Part(4, 0, 32, 0), Part(5, 0, 24, 32)], label="base"),
            bits("poll_interval", 6, 15, 0, fmt="dec", label="poll", show="always"),
        )
        if form == "gfx9":
            return [_pm4(cls, common, 6, note="target uses the gfx9 ACQUIRE_MEM form")]
        if form == "gfx10":
            return [_pm4(cls, (*common, bits("gcr_cntl", 7, 18, 0, show="never")), 7,
                         note="target uses the gfx10 ACQUIRE_MEM form")]
        raise PacketError(f"ACQUIRE_MEM: unknown acquire_mem_form {form!r}")

    @classmethod
    def invalidate_all(cls, target: Target | str, **fields: Any) -> AcquireMem:
        """Full-range invalidate of the shader caches and L2, as kfdtest emits it."""
        return cls(**{**_INVALIDATE_ALL[cls.form_for(target)], **fields})

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        items = []
        if self.coher_cntl or "gcr_cntl" not in lay.by_name:
            items.append(f"coher_cntl={render_flags(self.coher_cntl, COHER_CNTL_BITS)}")
        if "gcr_cntl" in lay.by_name:
            items.append(f"gcr_cntl={render_flags(self.gcr_cntl, GCR_CNTL_BITS, _GCR_CNTL_MULTI)}")
        return [*items, *lay.render_items(self)]


class _SetRegBase(Pm4Packet):
    WINDOW: ClassVar[tuple[int, int]]

    def _reg_names(self, target: Target | str | None) -> dict[int, str]:
        return {}

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        names = self._reg_names(target)
        regs = []
        for i, v in enumerate(self.values):
            off = self.reg_offset + i
            regs.append(f"{names.get(off, f'reg[{off:#x}]')}={v:#x}")
        return [*lay.render_items(self, skip=("reg_offset",)), *regs]


@dataclass(frozen=True, kw_only=True)
class SetShReg(_SetRegBase):
    """SET_SH_REG (0x76): write ``values`` to consecutive SH registers from ``reg_offset``
    (register dword address - 0x2C00; e.g. ``target.reg("COMPUTE_PGM_LO")`` = 0x20C)."""

    reg_offset: int
    values: tuple[int, ...]
    vmid_shift: int = 0
    index: int = 0

    OPCODE = 0x76
    MNEMONIC = "SET_SH_REG"
    WINDOW = SH_REG_WINDOW
    _TUPLE_FIELDS = ("values",)

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (bits("reg_offset", 1, 15, 0, label="reg", show="always"),
                           bits("vmid_shift", 1, 27, 23),
                           bits("index", 1, 31, 28)), 1, tail="values", tail_min=1)]

    @classmethod
    def of(cls, target: Target | str, register: str | int, *values: int, **kw: Any) -> SetShReg:
        """SET_SH_REG by register name (``"COMPUTE_PGM_RSRC3"``) using the target's offsets."""
        t = resolve_target(target, "SET_SH_REG")
        off = register if isinstance(register, int) else _sh_offset(t, register)
        return cls(reg_offset=off, values=tuple(values), **kw)

    def _check(self, target: Target | str | None) -> None:
        span = SH_REG_WINDOW[1] - SH_REG_WINDOW[0]
        if self.reg_offset + len(self.values) > span:
            raise PacketError(f"SET_SH_REG: registers {self.reg_offset:#x}..."
                              f"{self.reg_offset + len(self.values) - 1:#x} leave the SH window "
                              f"(offsets below {span:#x}: 0x2C00..0x3000)")

    def _reg_names(self, target: Target | str | None) -> dict[int, str]:
        if target is None:
            return _common_sh_names()
        return _sh_names(resolve_target(target))


@dataclass(frozen=True, kw_only=True)
class SetUconfigReg(_SetRegBase):
    """SET_UCONFIG_REG (0x79): write ``values`` to consecutive UCONFIG registers from
    ``reg_offset`` (register dword address - 0xC000)."""

    reg_offset: int
    values: tuple[int, ...]
    index: int = 0

    OPCODE = 0x79
    MNEMONIC = "SET_UCONFIG_REG"
    WINDOW = UCONFIG_REG_WINDOW
    _TUPLE_FIELDS = ("values",)

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (bits("reg_offset", 1, 15, 0, label="reg", show="always"),
                           bits("index", 1, 31, 28)), 1, tail="values", tail_min=1)]


_SH_NAME_CACHE: dict[int, tuple[Target, dict[int, str]]] = {}


def _sh_names(t: Target) -> dict[int, str]:
    hit = _SH_NAME_CACHE.get(id(t))
    if hit is None or hit[0] is not t:
        hit = (t, {off: name for name, off in t.compute_regs.items()})
        _SH_NAME_CACHE[id(t)] = hit
    return hit[1]


def _common_sh_names() -> dict[int, str]:
    """SH register names whose offset is the same on every known target (no target given)."""
    from ..targets.table import TARGETS

    maps = [_sh_names(t) for t in TARGETS.values()]
    return {off: name for off, name in maps[0].items() if all(m.get(off) == name for m in maps)}


def _sh_offset(t: Target, name: str) -> int:
    try:
        return t.reg(name)
    except KeyError:
        raise PacketError(f"{t.name} has no SH register {name!r}; known: "
                          f"{', '.join(sorted(t.compute_regs))}") from None


@dataclass(frozen=True, kw_only=True)
class DispatchDirect(Pm4Packet):
    """DISPATCH_DIRECT (0x15): launch dim_x * dim_y * dim_z workgroups (thread counts when
    USE_THREAD_DIMENSIONS is set) with COMPUTE_DISPATCH_INITIATOR = ``initiator``."""

    dim_x: int
    dim_y: int = 1
    dim_z: int = 1
    initiator: int = 1

    OPCODE = 0x15
    MNEMONIC = "DISPATCH_DIRECT"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (u32("dim_x", 1, fmt="dec", label="x", show="always"),
                           u32("dim_y", 2, fmt="dec", label="y", show="always"),
                           u32("dim_z", 3, fmt="dec", label="z", show="always"),
                           u32("initiator", 4, show="never")), 4)]

    @classmethod
    def for_target(cls, target: Target | str, dim_x: int, dim_y: int = 1, dim_z: int = 1, *,
                   wave32: bool | None = None, **fields: Any) -> DispatchDirect:
        """DISPATCH_DIRECT of workgroup counts with INITIATOR = COMPUTE_SHADER_EN |
        FORCE_START_AT_000, plus CS_W32_EN for wave32 (default: the target's wave size)."""
        t = resolve_target(target, "DISPATCH_DIRECT")
        w32 = t.is_wave32_default if wave32 is None else wave32
        if w32 and not t.dispatch_initiator_wave32:
            raise PacketError(f"DISPATCH_DIRECT: {t.name} has no wave32 dispatch (CS_W32_EN)")
        initiator = 1 | (1 << 2) | (t.dispatch_initiator_wave32 if w32 else 0)
        return cls(dim_x=dim_x, dim_y=dim_y, dim_z=dim_z, initiator=initiator, **fields)

    def _render_items(self, lay: Layout, target: Target | str | None) -> list[str]:
        names = dict(INITIATOR_BITS)
        w32 = 1 << 15
        if target is not None:
            w32 = resolve_target(target).dispatch_initiator_wave32
        if w32:
            names[w32.bit_length() - 1] = "CS_W32_EN"
        return [*lay.render_items(self), f"initiator={render_flags(self.initiator, names)}"]


_COPY_SRC = {0: "reg", 1: "mem", 2: "tc_l2", 3: "gds", 4: "perfcounters", 5: "imm",
             6: "atomic_return", 7: "gds_atomic_return0", 8: "gds_atomic_return1",
             9: "gpu_clock", 10: "system_clock", 11: "ext32perfcntr"}
_COPY_DST = {0: "reg", 2: "tc_l2", 3: "gds", 4: "perfcounters", 5: "mem", 6: "reg_dc",
             11: "ext32perfcntr"}
_COPY_SRC_MEMORY = (1, 2)     # SRC_SEL values that address memory (MEMORY, TC_L2)
_COPY_DST_MEMORY = (2, 5)     # DST_SEL values that address memory (TC_L2, MEMORY)


@dataclass(frozen=True, kw_only=True)
class CopyData(Pm4Packet):
    """COPY_DATA (0x40): copy 32 or 64 bits (``count_sel``) between registers, memory, the GPU
    clock, immediates. ``src_addr`` holds the immediate data when ``src_sel`` = 5."""

    src_sel: int
    dst_sel: int
    src_addr: int = 0
    dst_addr: int = 0
    count_sel: int = 0
    wr_confirm: int = 0
    src_cache_policy: int = 0
    dst_cache_policy: int = 0
    pq_exe_status: int = 0

    OPCODE = 0x40
    MNEMONIC = "COPY_DATA"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            bits("src_sel", 1, 3, 0, names=_COPY_SRC, label="src", show="always"),
            bits("dst_sel", 1, 11, 8, names=_COPY_DST, label="dst", show="always"),
            bits("src_cache_policy", 1, 14, 13, names=CACHE_POLICY_NAMES),
            flag("count_sel", 1, 16, names={0: "32bit", 1: "64bit"}, label="count",
                 show="always"),
            flag("wr_confirm", 1, 20),
            bits("dst_cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            flag("pq_exe_status", 1, 29),
            u64("src_addr", 2, label="src_addr", show="always"),
            u64("dst_addr", 4, label="dst_addr", show="always"),
        ), 5)]

    def _check(self, target: Target | str | None) -> None:
        # A memory address is SRC/DST_32B_ADDR_LO [31:2] or _64B_ADDR_LO [31:3] (soc15d.h).
        align = 8 if self.count_sel else 4
        for name, memory, where in (("src", self.src_sel in _COPY_SRC_MEMORY, self.src_addr),
                                    ("dst", self.dst_sel in _COPY_DST_MEMORY, self.dst_addr)):
            if memory and where % align:
                raise PacketError(f"COPY_DATA: {name}_addr={where:#x} must be {align}-byte "
                                  f"aligned for a {8 * align}-bit copy to or from memory")


_DMA_SRC = {0: "src_addr", 1: "gds", 2: "data", 3: "src_addr_l2"}
_DMA_DST = {0: "dst_addr", 1: "gds", 3: "dst_addr_l2"}


@dataclass(frozen=True, kw_only=True)
class DmaData(Pm4Packet):
    """DMA_DATA (0x50): CP DMA copy or fill of ``byte_count`` bytes. With ``src_sel`` = 2 (DATA)
    ``src_addr`` low dword is the 32-bit fill value. BYTE_COUNT is [25:0] (nvd.h; soc15d.h's
    comment gives the GFX6 [20:0] layout, facts-pm4.md §8 #5)."""

    dst_addr: int
    byte_count: int
    src_addr: int = 0
    src_sel: int = 0
    dst_sel: int = 0
    engine_sel: int = 0
    cp_sync: int = 0
    src_cache_policy: int = 0
    dst_cache_policy: int = 0
    sas: int = 0
    das: int = 0
    saic: int = 0
    daic: int = 0
    raw_wait: int = 0

    OPCODE = 0x50
    MNEMONIC = "DMA_DATA"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            flag("engine_sel", 1, 0, names=_ENGINE_ME_PFP, label="engine"),
            bits("src_cache_policy", 1, 14, 13, names=CACHE_POLICY_NAMES),
            bits("dst_sel", 1, 21, 20, names=_DMA_DST, label="dst", show="always"),
            bits("dst_cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            bits("src_sel", 1, 30, 29, names=_DMA_SRC, label="src", show="always"),
            flag("cp_sync", 1, 31),
            u64("src_addr", 2, show="always"),
            u64("dst_addr", 4, show="always"),
            bits("byte_count", 6, 25, 0, fmt="dec", label="bytes", show="always"),
            flag("sas", 6, 26), flag("das", 6, 27), flag("saic", 6, 28), flag("daic", 6, 29),
            flag("raw_wait", 6, 30),
        ), 6)]


@dataclass(frozen=True, kw_only=True)
class AtomicMem(Pm4Packet):
    """ATOMIC_MEM (0x1E): a TC_OP atomic at ``addr`` (ATOMIC is 7 bits: the non-returning ops
    are >= 0x40; facts-pm4.md §8 #6)."""

    addr: int
    atomic: int
    src_data: int = 0
    cmp_data: int = 0
    command: int = 0
    cache_policy: int = 0
    loop_interval: int = 0

    OPCODE = 0x1E
    MNEMONIC = "ATOMIC_MEM"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (
            bits("atomic", 1, 6, 0, names=TC_OP_NAMES, label="op", show="always"),
            bits("command", 1, 11, 8, names=ATOMIC_COMMAND_NAMES),
            bits("cache_policy", 1, 26, 25, names=CACHE_POLICY_NAMES),
            u64("addr", 2, show="always"),
            u64("src_data", 4, label="src", show="always"),
            u64("cmp_data", 6, label="cmp"),
            bits("loop_interval", 8, 12, 0, fmt="dec", label="loop_interval"),
        ), 8)]

    def _check(self, target: Target | str | None) -> None:
        if self.addr & 3:
            raise PacketError(f"ATOMIC_MEM: addr={self.addr:#x} must be at least dword aligned")


@dataclass(frozen=True, kw_only=True)
class PredExec(Pm4Packet):
    """PRED_EXEC (0x23): the next ``exec_count`` dwords run only on the XCCs selected by
    ``virtual_xcc_id_select`` (gfx942 multi-XCC; soc15d.h PACKET3_PRED_EXEC__*)."""

    exec_count: int
    virtual_xcc_id_select: int = 0

    OPCODE = 0x23
    MNEMONIC = "PRED_EXEC"

    @classmethod
    def _build(cls, form: str | None) -> list[Layout]:
        return [_pm4(cls, (bits("exec_count", 1, 13, 0, fmt="dec", label="count",
                                show="always"),
                           bits("virtual_xcc_id_select", 1, 31, 24, label="xcc_mask",
                                show="always")), 1)]


PACKET_CLASSES: tuple[type[Pm4Packet], ...] = (
    Nop, WriteData, WaitRegMem, IndirectBuffer, EventWrite, ReleaseMem, AcquireMem, SetShReg,
    SetUconfigReg, DispatchDirect, CopyData, DmaData, AtomicMem, PredExec,
)
for _cls in PACKET_CLASSES:   # register enum display names for every form up front
    if _cls.FORM_ATTR is None:
        _cls.layouts(None)
    else:
        for _form in ("gfx9", "gfx10"):
            _cls.layouts(_form)


# ---------------------------------------------------------------------------------------------
# Decoding

class _Entry:
    __slots__ = ("cls", "fixed", "var")

    def __init__(self, cls: type[Pm4Packet], layouts: Sequence[Layout]) -> None:
        self.cls = cls
        self.fixed: dict[int, Layout] = {}
        self.var: Layout | None = None
        for lay in layouts:
            if lay.tail:
                self.var = lay
            elif lay.length is not None:
                self.fixed[lay.ndw] = lay


_TABLES: dict[int, tuple[Any, dict[int, _Entry | str]]] = {}


def _table(target: Target | str | None) -> dict[int, _Entry | str]:
    t = resolve_target(target) if target is not None else None
    hit = _TABLES.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    table: dict[int, _Entry | str] = {}
    for cls in PACKET_CLASSES:
        if cls.FORM_ATTR is not None and t is None:
            table[cls.OPCODE] = (f"{cls.MNEMONIC} differs between GPU families; decoding it "
                                 f"needs a target")
            continue
        table[cls.OPCODE] = _Entry(cls, cls.layouts(cls.form_for(t)))
    _TABLES[id(t)] = (t, table)
    return table


def _expected(entry: _Entry) -> str:
    opts = [f"{n - 1} body dwords (count {n - 2})" for n in sorted(entry.fixed)]
    if entry.var is not None:
        opts.append(f"at least {entry.var.ndw - 1 + entry.var.tail_min} body dwords")
    notes = {lay.note for lay in entry.fixed.values() if lay.note}
    return " or ".join(opts) + "".join(f" ({n})" for n in sorted(notes))


# Per target: header dword (low two bits forced to 1) -> (decoder, length). Headers repeat, so
# the hot path is one dict lookup; misses go through _decode_slow, which validates and fills it.
_FAST: dict[int, tuple[Any, dict[int, tuple[Any, int]]]] = {}
_FAST_LIMIT = 8192
_DIRECT = (list, tuple, memoryview)


def decode(dwords: Any, offset: int = 0, target: Target | str | None = None
           ) -> tuple[Pm4Packet | Type2, int]:
    """Decode the packet at ``offset`` (dwords); returns (packet, length in dwords).

    Raises PacketDecodeError naming the offset, the header and what is wrong: a packet type
    other than 3 (type-2 filler is accepted), an opcode this model does not execute, a COUNT
    that does not match the opcode's body, a reserved field value, or a stream that ends inside
    the packet. ``target`` selects the per-family forms (RELEASE_MEM, ACQUIRE_MEM).
    ``dwords`` is a list/tuple of ints, a memoryview of format "I", bytes, array or numpy
    array (see ``as_words``).
    """
    d = dwords if type(dwords) in _DIRECT else as_words(dwords)
    if type(target) is str:
        target = resolve_target(target)
    fast = _FAST.get(id(target))
    if fast is None or fast[0] is not target:
        fast = (target, {})
        _table(target)   # validates the target before it is cached
        _FAST[id(target)] = fast
    try:
        h = d[offset]
    except IndexError:
        raise PacketDecodeError("PM4", offset, None, "the stream ends before the packet header"
                                ) from None
    hit = fast[1].get(h | 3)
    if hit is not None:
        n = hit[1]
        if offset + n <= len(d):
            try:
                return hit[0](d, offset, n), n
            except _Reserved as e:
                raise PacketDecodeError("PM4", offset, h, e.reason, field=e.field) from None
    return _decode_slow(d, offset, target, h, fast[1])


def _decode_slow(d: Sequence[int], offset: int, target: Target | str | None, h: int,
                 cache: dict[int, tuple[Any, int]]) -> tuple[Pm4Packet | Type2, int]:
    if h >> 30 != 3:
        kind = h >> 30
        if kind == 2:
            return Type2(pad=h & 0x3FFFFFFF), 1
        what = "a type-0 register-write packet (not used on compute queues)" if kind == 0 else \
            "packet type 1 (undefined)"
        raise PacketDecodeError("PM4", offset, h, f"bad packet type {kind}: {what}; expected a "
                                f"type-3 packet")
    table = _table(target)
    op = (h >> 8) & 0xFF
    count = (h >> 16) & 0x3FFF
    entry = table.get(op)
    if entry is None:
        name = OPCODE_NAMES.get(op)
        why = (f"opcode {op:#04x} ({name}) is not supported by this PM4 model" if name else
               f"unknown opcode {op:#04x}")
        raise PacketDecodeError("PM4", offset, h, why)
    if isinstance(entry, str):
        raise PacketDecodeError("PM4", offset, h, entry)
    if count == 0x3FFF and op == 0x10:
        n = 1
        lay = entry.cls.layouts(None)[0]
    else:
        n = count + 2
        lay = entry.fixed.get(n)
        if lay is None:
            var = entry.var
            if var is None or n < var.ndw + var.tail_min:
                raise PacketDecodeError(
                    "PM4", offset, h, f"{entry.cls.MNEMONIC}: count {count} gives {n - 1} body "
                    f"dwords, but the packet has {_expected(entry)}")
            lay = var
    if len(cache) < _FAST_LIMIT:
        cache[h | 3] = (lay.decode, n)
    if offset + n > len(d):
        raise PacketDecodeError("PM4", offset, h, f"{entry.cls.MNEMONIC} needs {n} dwords but "
                                f"the stream ends after {len(d) - offset}")
    try:
        return lay.decode(d, offset, n), n
    except _Reserved as e:
        raise PacketDecodeError("PM4", offset, h, e.reason, field=e.field) from None


def iter_packets(dwords: Any, target: Target | str | None = None, start: int = 0,
                 end: int | None = None) -> Iterator[tuple[int, Pm4Packet | Type2, int]]:
    """Yield (offset, packet, length) for consecutive packets in ``dwords[start:end]``."""
    return iter_dwords(decode, dwords, target, start, end)


def _skip_length(d: Sequence[int], off: int, avail: int) -> tuple[int, str]:
    """How far to skip an undecodable dword: the header's length if it is plausible."""
    h = d[off]
    if h >> 30 == 3:
        op = (h >> 8) & 0xFF
        n = (h >> 16 & 0x3FFF) + 2
        if op in OPCODE_NAMES and n <= avail:
            return n, f" ({OPCODE_NAMES[op]}, {n} dwords skipped)"
    return 1, ""


def format_stream(dwords: Any, target: Target | str | None = None, start_offset: int = 0,
                  mark: int | None = None, *, limit: int | None = None, raw_limit: int = 4) -> str:
    """Render a window of a PM4 ring or IB, one line per packet, like a debugger's ring dump.

    ``start_offset`` is the ring dword offset of ``dwords[0]`` (used for the labels) and
    ``mark`` an offset in the same units to flag with ``=>`` (the read pointer). Undecodable
    dwords are shown as ``??? 0x…`` with the reason and decoding continues after them (by the
    header's COUNT when it names a known opcode and fits, else one dword).
    """
    return format_dword_stream(as_words(dwords), target, decode, _skip_length,
                               start_offset=start_offset, mark=mark, limit=limit,
                               raw_limit=raw_limit, unit_bytes=4, unit_name="dword")


def render(packet: Pm4Packet | Type2, target: Target | str | None = None) -> str:
    """One packet as ring-dump text (without offset and raw dwords)."""
    return packet.render(target)


__all__ += ["PACKET_CLASSES", "TYPE2_FILLER", "UCONFIG_REG_WINDOW", "render"]
