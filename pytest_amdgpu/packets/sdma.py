"""SDMA (system DMA engine) packets: build, parse, render, for SDMA 4.4 (gfx90a, gfx942) and
SDMA 6.0 (gfx1100).

Layouts follow the kernel's ``vega10_sdma_pkt_open.h`` (SDMA 4.x, used by sdma_v4_4_2.c) and
``sdma_v6_0_0_pkt_open.h``; see shared/reference/facts-sdma-aql-codeobj.md §1. Dword 0 is the
header: ``op [7:0]``, ``sub_op [15:8]``, packet-specific bits above. Byte and dword counts are
stored N-1 (the fields here hold N). Copy/fill count widths come from the Target
(``sdma_count_bits``: 22 on SDMA 4.x, 30 on 6.0); fields that only SDMA 6.0 has (cache
policies, ``cpv``, FENCE ``mtype`` …) are rejected when encoding for SDMA 4.x.

Ring pointers are bytes; packets are dword aligned. ``decode`` works in dwords (offset and
length); ``format_stream`` labels lines with byte offsets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple

from ..errors import PacketError
from ..targets.table import Target
from .common import (
    TC_OP_NAMES,
    Field,
    Layout,
    Packet,
    PacketDecodeError,
    _Reserved,
    addr,
    as_words,
    bits,
    flag,
    format_dword_stream,
    hex_list,
    iter_dwords,
    resolve_target,
    u32,
    u64,
)
from .pm4 import COMPARE_FUNCTION_NAMES

__all__ = [
    "OP_NAMES", "SdmaAtomic", "SdmaConstFill", "SdmaCopyLinear", "SdmaCopyLinearBroadcast",
    "SdmaFence", "SdmaIndirect", "SdmaNop", "SdmaOp", "SdmaPacket", "SdmaPollRegmem",
    "SdmaTimestampGet", "SdmaTimestampGetGlobal", "SdmaTimestampSet", "SdmaTrap",
    "SdmaWriteLinear", "decode", "fence64", "format_stream", "iter_packets", "split_copy",
    "split_fill",
]


class SdmaOp(IntEnum):
    """SDMA_OP_* (vega10_sdma_pkt_open.h, sdma_v6_0_0_pkt_open.h)."""

    NOP = 0
    COPY = 1
    WRITE = 2
    INDIRECT = 4
    FENCE = 5
    TRAP = 6
    SEM = 7
    POLL_REGMEM = 8
    COND_EXE = 9
    ATOMIC = 10
    CONST_FILL = 11
    PTEPDE = 12
    TIMESTAMP = 13
    SRBM_WRITE = 14
    PRE_EXE = 15


_OP_NAMES_COMMON = {0: "NOP", 1: "COPY", 2: "WRITE", 4: "INDIRECT", 5: "FENCE", 6: "TRAP",
                    7: "SEM", 8: "POLL_REGMEM", 9: "COND_EXE", 10: "ATOMIC", 11: "CONST_FILL",
                    12: "PTEPDE", 13: "TIMESTAMP", 14: "SRBM_WRITE", 15: "PRE_EXE"}
OP_NAMES: dict[int, dict[int, str]] = {
    4: {**_OP_NAMES_COMMON, 16: "DUMMY_TRAP"},
    6: {**_OP_NAMES_COMMON, 16: "GPUVM_INV", 17: "GCR_REQ", 32: "DUMMY_TRAP"},
}
_SUB_OP_NAMES = {
    1: {0: "LINEAR", 1: "TILED", 3: "SOA", 4: "LINEAR_SUB_WIND", 5: "TILED_SUB_WIND",
        6: "T2T_SUB_WIND", 7: "DIRTY_PAGE", 8: "LINEAR_PHY", 16: "LINEAR_BC", 17: "TILED_BC",
        20: "LINEAR_SUB_WIND_BC", 21: "TILED_SUB_WIND_BC", 22: "T2T_SUB_WIND_BC",
        36: "LINEAR_SUB_WIND_LARGE"},
    2: {0: "LINEAR", 1: "TILED", 17: "TILED_BC"},
    8: {1: "POLL_REG_WRITE_MEM", 2: "POLL_DBIT_WRITE_MEM", 3: "POLL_MEM_VERIFY",
        4: "VM_INVALIDATION"},
    11: {1: "DATA_FILL_MULTI"},
    12: {0: "GEN", 1: "COPY", 2: "RMW", 3: "COPY_BACKWARDS"},
    13: {0: "SET", 1: "GET", 2: "GET_GLOBAL"},
}
# Fixed lengths (dwords) of SDMA packets this model does not execute, so that ring dumps can
# step over them (the header files' packet definitions).
_OTHER_LENGTHS = {(7, 0): 3, (9, 0): 5, (14, 0): 3, (15, 0): 2, (16, 0): 2, (17, 0): 5,
                  (32, 0): 2}

_FILLSIZE = {0: "byte", 2: "dword"}


class SdmaForm(NamedTuple):
    """What selects an SDMA packet's layout: the SDMA major version and the width of the
    COPY_LINEAR / CONST_FILL count field (Target.sdma_count_bits)."""

    major: int
    count_bits: int


def form_of(target: Target | str | None) -> SdmaForm:
    """The SDMA form of ``target`` (SDMA 4.x on gfx90a/gfx942, 6.0 on gfx1100)."""
    t = resolve_target(target, "SDMA packets")
    major = t.sdma_version[0]
    if major not in (4, 6):
        raise PacketError(f"SDMA {'.'.join(map(str, t.sdma_version))} ({t.name}) is not modelled; "
                          f"this module knows SDMA 4.x and 6.0")
    return SdmaForm(major, t.sdma_count_bits)


@dataclass(frozen=True, kw_only=True)
class SdmaPacket(Packet):
    """Base of the SDMA packets."""

    OP: ClassVar[int] = -1
    SUB_OP: ClassVar[int] = 0

    @classmethod
    def layouts(cls, form: Any = None) -> tuple[Layout, ...]:
        """The wire layouts of this packet for an SdmaForm (or a (major, count_bits) tuple)."""
        return super().layouts(SdmaForm(*form))

    def _layout(self, target: Target | str | None) -> Layout:
        return self.layouts(form_of(target))[0]

    def encode_bytes(self, target: Target | str | None = None) -> bytes:
        import struct

        w = self.encode(target)
        return struct.pack(f"<{len(w)}I", *w)

    def render(self, target: Target | str | None = None) -> str:
        return " ".join([self.MNEMONIC, *self._render_items(self._layout(target))])

    def _render_items(self, lay: Layout) -> list[str]:
        return lay.render_items(self)

    def __str__(self) -> str:
        try:
            return self.render("gfx1100")
        except PacketError:
            return repr(self)


def _sdma(cls: type[SdmaPacket], fields: Sequence[Field], ndw: int, major: int, *,
          const0: int = 0, tail: str | None = None, tail_min: int = 0,
          tail_max: int | None = None, length: tuple[int, int, int, int] | None = None
          ) -> Layout:
    note = f"SDMA {major}.x" + ("" if major >= 6 else "; the field exists only in SDMA 6.0")
    return Layout(f"SDMA {cls.MNEMONIC}", cls, fields, ndw,
                  const={0: cls.OP | (cls.SUB_OP << 8) | const0}, tail=tail, tail_min=tail_min,
                  tail_max=tail_max, length=length, note=note)


def _v6(major: int, *fields: Field) -> tuple[Field, ...]:
    return fields if major >= 6 else ()


@dataclass(frozen=True, kw_only=True)
class SdmaNop(SdmaPacket):
    """NOP: header COUNT [29:16] = number of dwords after the header to skip (``body``)."""

    body: tuple[int, ...] = ()

    OP = 0
    MNEMONIC = "NOP"
    _TUPLE_FIELDS = ("body",)

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (), 1, major, tail="body", tail_max=0x3FFF, length=(0, 16, 14, -1))]

    @classmethod
    def of_size(cls, ndw: int, fill: int = 0) -> SdmaNop:
        """A NOP occupying exactly ``ndw`` dwords (ring padding)."""
        if not 1 <= ndw <= 0x4000:
            raise PacketError(f"SDMA NOP: cannot pad {ndw} dwords with one packet (1..16384)")
        return cls(body=(fill,) * (ndw - 1))

    def _render_items(self, lay: Layout) -> list[str]:
        return [f"({len(self.body) + 1} dwords)"] if self.body else []


def _count(name: str, dw: int, count_bits: int, **kw: Any) -> Field:
    return bits(name, dw, count_bits - 1, 0, bias=1, fmt="dec", show="always", **kw)


@dataclass(frozen=True, kw_only=True)
class SdmaCopyLinear(SdmaPacket):
    """COPY_LINEAR (op 1, sub 0): copy ``size`` bytes (COUNT = size - 1)."""

    src_addr: int
    dst_addr: int
    size: int
    encrypt: int = 0
    tmz: int = 0
    dst_sw: int = 0
    src_sw: int = 0
    cpv: int = 0
    backwards: int = 0
    dst_cache_policy: int = 0
    src_cache_policy: int = 0

    OP = 1
    SUB_OP = 0
    MNEMONIC = "COPY_LINEAR"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            flag("encrypt", 0, 16), flag("tmz", 0, 18),
            *_v6(major, flag("cpv", 0, 19), flag("backwards", 0, 25)),
            _count("size", 1, form.count_bits, label="bytes"),
            bits("dst_sw", 2, 17, 16), bits("src_sw", 2, 25, 24),
            *_v6(major, bits("dst_cache_policy", 2, 20, 18), bits("src_cache_policy", 2, 28, 26)),
            u64("src_addr", 3, label="src", show="always"),
            u64("dst_addr", 5, label="dst", show="always"),
        ), 7, major)]


@dataclass(frozen=True, kw_only=True)
class SdmaCopyLinearBroadcast(SdmaPacket):
    """COPY_LINEAR with the broadcast bit (27): one source, two destinations (9 dwords)."""

    src_addr: int
    dst1_addr: int
    dst2_addr: int
    size: int
    encrypt: int = 0
    tmz: int = 0
    dst2_sw: int = 0
    dst1_sw: int = 0
    src_sw: int = 0
    cpv: int = 0
    dst2_cache_policy: int = 0
    dst1_cache_policy: int = 0
    src_cache_policy: int = 0

    OP = 1
    SUB_OP = 0
    MNEMONIC = "COPY_LINEAR_BROADCAST"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            flag("encrypt", 0, 16), flag("tmz", 0, 18), *_v6(major, flag("cpv", 0, 19)),
            _count("size", 1, form.count_bits, label="bytes"),
            bits("dst2_sw", 2, 9, 8), bits("dst1_sw", 2, 17, 16), bits("src_sw", 2, 25, 24),
            *_v6(major, bits("dst2_cache_policy", 2, 12, 10),
                 bits("dst1_cache_policy", 2, 20, 18), bits("src_cache_policy", 2, 28, 26)),
            u64("src_addr", 3, label="src", show="always"),
            u64("dst1_addr", 5, label="dst1", show="always"),
            u64("dst2_addr", 7, label="dst2", show="always"),
        ), 9, major, const0=1 << 27)]


@dataclass(frozen=True, kw_only=True)
class SdmaWriteLinear(SdmaPacket):
    """WRITE_LINEAR ("WRITE_UNTILED", op 2, sub 0): write ``data`` dwords at ``dst_addr``
    (DW3 COUNT [19:0] = len(data) - 1)."""

    dst_addr: int
    data: tuple[int, ...]
    encrypt: int = 0
    tmz: int = 0
    sw: int = 0
    cpv: int = 0
    cache_policy: int = 0

    OP = 2
    SUB_OP = 0
    MNEMONIC = "WRITE_LINEAR"
    _TUPLE_FIELDS = ("data",)

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            flag("encrypt", 0, 16), flag("tmz", 0, 18), *_v6(major, flag("cpv", 0, 28)),
            u64("dst_addr", 1, label="dst", show="always"),
            bits("sw", 3, 25, 24), *_v6(major, bits("cache_policy", 3, 28, 26)),
        ), 4, major, tail="data", tail_min=1, tail_max=1 << 20, length=(3, 0, 20, -5))]

    def _check(self, target: Target | str | None) -> None:
        if self.dst_addr & 3:
            raise PacketError(f"SDMA WRITE_LINEAR: dst_addr={self.dst_addr:#x} must be dword "
                              f"aligned")

    def _render_items(self, lay: Layout) -> list[str]:
        return [*lay.render_items(self), f"data={hex_list(self.data)}"]


@dataclass(frozen=True, kw_only=True)
class SdmaConstFill(SdmaPacket):
    """CONST_FILL (op 11): fill ``size`` bytes at ``dst_addr`` with ``data`` (COUNT = size - 1,
    as the kernel writes it). ``fillsize`` 2 = dword fill (size and address dword aligned),
    0 = byte fill (the low byte of ``data``)."""

    dst_addr: int
    data: int
    size: int
    fillsize: int = 2
    sw: int = 0
    cache_policy: int = 0
    cpv: int = 0

    OP = 11
    MNEMONIC = "CONST_FILL"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            bits("sw", 0, 17, 16),
            *_v6(major, bits("cache_policy", 0, 26, 24), flag("cpv", 0, 28)),
            bits("fillsize", 0, 31, 30, names=_FILLSIZE, show="always"),
            u64("dst_addr", 1, label="dst", show="always"),
            u32("data", 3, show="always"),
            _count("size", 4, form.count_bits, label="bytes"),
        ), 5, major)]

    def _check(self, target: Target | str | None) -> None:
        if self.fillsize == 2 and (self.dst_addr & 3 or self.size & 3):
            raise PacketError(f"SDMA CONST_FILL: a dword fill needs a dword-aligned dst_addr and "
                              f"size (got {self.dst_addr:#x}, {self.size})")


@dataclass(frozen=True, kw_only=True)
class SdmaFence(SdmaPacket):
    """FENCE (op 5): write the 32-bit ``data`` at ``addr`` (dword aligned). SDMA 6.0 adds
    memory-type/cache fields in the header; producers use ``mtype=3`` (uncached)."""

    addr: int
    data: int
    mtype: int = 0
    gcc: int = 0
    sys: int = 0
    snp: int = 0
    gpa: int = 0
    l2_policy: int = 0
    llc_policy: int = 0
    cpv: int = 0

    OP = 5
    MNEMONIC = "FENCE"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            *_v6(major, bits("mtype", 0, 18, 16), flag("gcc", 0, 19), flag("sys", 0, 20),
                 flag("snp", 0, 22), flag("gpa", 0, 23), bits("l2_policy", 0, 25, 24),
                 flag("llc_policy", 0, 26), flag("cpv", 0, 28)),
            u64("addr", 1, show="always"),
            u32("data", 3, show="always"),
        ), 4, major)]

    @classmethod
    def for_target(cls, target: Target | str, addr: int, data: int, **fields: Any) -> SdmaFence:
        """A FENCE with the producers' defaults for the target's SDMA version (SDMA 6.0:
        mtype 3 = uncached, as the kernel, ROCR and tinygrad write it)."""
        t = resolve_target(target, "SDMA FENCE")
        return cls(addr=addr, data=data, **{"mtype": t.sdma_fence_mtype, **fields})

    def _check(self, target: Target | str | None) -> None:
        if self.addr & 3:
            raise PacketError(f"SDMA FENCE: addr={self.addr:#x} must be dword aligned")


@dataclass(frozen=True, kw_only=True)
class SdmaTrap(SdmaPacket):
    """TRAP (op 6): raise an SDMA trap interrupt carrying ``int_context`` [27:0] (producers put
    the KFD event id there)."""

    int_context: int = 0

    OP = 6
    MNEMONIC = "TRAP"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (bits("int_context", 1, 27, 0, label="ctx", show="always"),), 2,
                      major)]


@dataclass(frozen=True, kw_only=True)
class SdmaPollRegmem(SdmaPacket):
    """POLL_REGMEM (op 8, sub 0): wait until ``(value & mask) function reference`` for the dword
    at ``addr`` (``mem_poll`` 1) or a register (``mem_poll`` 0). ``retry_count`` 0xFFF retries
    forever. The function codes are the PM4 WAIT_REG_MEM ones (facts-sdma §1.4, inferred)."""

    addr: int
    reference: int
    function: int = 3
    mask: int = 0xFFFFFFFF
    mem_poll: int = 1
    hdp_flush: int = 0
    poll_interval: int = 4
    retry_count: int = 0xFFF
    cache_policy: int = 0
    cpv: int = 0

    OP = 8
    SUB_OP = 0
    MNEMONIC = "POLL_REGMEM"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            *_v6(major, bits("cache_policy", 0, 22, 20), flag("cpv", 0, 24)),
            flag("hdp_flush", 0, 26),
            bits("function", 0, 30, 28, names=COMPARE_FUNCTION_NAMES, strict=True, label="func",
                 show="always"),
            flag("mem_poll", 0, 31, names={0: "reg", 1: "mem"}, show="never"),
            u64("addr", 1, show="always"),
            u32("reference", 3, label="ref", show="always"),
            u32("mask", 4, show="always"),
            bits("poll_interval", 5, 15, 0, fmt="dec", label="poll", show="always"),
            bits("retry_count", 5, 27, 16, label="retry", show="always"),
        ), 6, major)]

    def _check(self, target: Target | str | None) -> None:
        if self.mem_poll and self.addr & 3:
            raise PacketError(f"SDMA POLL_REGMEM: addr={self.addr:#x} must be dword aligned")

    def _render_items(self, lay: Layout) -> list[str]:
        return ["mem" if self.mem_poll else "reg", *lay.render_items(self)]


@dataclass(frozen=True, kw_only=True)
class SdmaTimestampSet(SdmaPacket):
    """TIMESTAMP SET (op 13, sub 0): load the engine's timestamp counter with ``value``."""

    value: int

    OP = 13
    SUB_OP = 0
    MNEMONIC = "TIMESTAMP_SET"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (u64("value", 1, show="always"),), 3, major)]


@dataclass(frozen=True, kw_only=True)
class SdmaTimestampGet(SdmaPacket):
    """TIMESTAMP GET (op 13, sub 1): write the engine's 64-bit timestamp at ``addr``
    (WRITE_ADDR_LO is [31:3]: 8-byte aligned; 32-byte alignment satisfies every producer)."""

    addr: int
    l2_policy: int = 0
    llc_policy: int = 0
    cpv: int = 0

    OP = 13
    SUB_OP = 1
    MNEMONIC = "TIMESTAMP_GET"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            *_v6(major, bits("l2_policy", 0, 25, 24), flag("llc_policy", 0, 26),
                 flag("cpv", 0, 28)),
            addr("addr", 1, 3, show="always"),
        ), 3, major)]


@dataclass(frozen=True, kw_only=True)
class SdmaTimestampGetGlobal(SdmaTimestampGet):
    """TIMESTAMP GET_GLOBAL (op 13, sub 2): write the global (GPU clock) timestamp at ``addr``."""

    SUB_OP = 2
    MNEMONIC = "TIMESTAMP_GET_GLOBAL"


@dataclass(frozen=True, kw_only=True)
class SdmaAtomic(SdmaPacket):
    """ATOMIC (op 10): a TC_OP atomic at ``addr`` (``atomic_op`` 47 = ADD_RTN_64; with
    ``src_data`` = 2**64 - 1 it decrements an HSA signal, as ROCR does)."""

    addr: int
    atomic_op: int
    src_data: int = 0
    cmp_data: int = 0
    loop: int = 0
    tmz: int = 0
    loop_interval: int = 0
    cache_policy: int = 0
    cpv: int = 0

    OP = 10
    MNEMONIC = "ATOMIC"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            flag("loop", 0, 16), flag("tmz", 0, 18),
            *_v6(major, bits("cache_policy", 0, 22, 20), flag("cpv", 0, 24)),
            bits("atomic_op", 0, 31, 25, names=TC_OP_NAMES, label="op", show="always"),
            u64("addr", 1, show="always"),
            u64("src_data", 3, label="src", show="always"),
            u64("cmp_data", 5, label="cmp"),
            bits("loop_interval", 7, 12, 0, fmt="dec"),
        ), 8, major)]

    def _check(self, target: Target | str | None) -> None:
        if self.addr & 3:
            raise PacketError(f"SDMA ATOMIC: addr={self.addr:#x} must be at least dword aligned")


@dataclass(frozen=True, kw_only=True)
class SdmaIndirect(SdmaPacket):
    """INDIRECT (op 4): run an IB of ``ib_size`` dwords at ``addr`` (32-byte aligned).
    The dword after this packet must be 8-dword aligned in the ring (kernel inserts NOPs)."""

    addr: int
    ib_size: int
    vmid: int = 0
    csa_addr: int = 0
    priv: int = 0

    OP = 4
    MNEMONIC = "INDIRECT"

    @classmethod
    def _build(cls, form: SdmaForm) -> list[Layout]:
        major = form.major
        return [_sdma(cls, (
            bits("vmid", 0, 19, 16, fmt="dec"), *_v6(major, flag("priv", 0, 31)),
            u64("addr", 1, show="always"),
            bits("ib_size", 3, 19, 0, fmt="dec", label="size", show="always"),
            u64("csa_addr", 4, label="csa"),
        ), 6, major)]

    def _check(self, target: Target | str | None) -> None:
        if self.addr & 31:
            raise PacketError(f"SDMA INDIRECT: addr={self.addr:#x} must be 32-byte aligned")


PACKET_CLASSES: tuple[type[SdmaPacket], ...] = (
    SdmaNop, SdmaCopyLinear, SdmaCopyLinearBroadcast, SdmaWriteLinear, SdmaConstFill, SdmaFence,
    SdmaTrap, SdmaPollRegmem, SdmaTimestampSet, SdmaTimestampGet, SdmaTimestampGetGlobal,
    SdmaAtomic, SdmaIndirect,
)
for _cls in PACKET_CLASSES:   # register enum display names up front
    _cls.layouts(SdmaForm(4, 22))
    _cls.layouts(SdmaForm(6, 30))


# ---------------------------------------------------------------------------------------------
# Decoding

def _ndw(cls: type[SdmaPacket]) -> int:
    return cls.layouts(SdmaForm(6, 30))[0].ndw      # fixed lengths are the same on 4.x and 6.0


# Lengths (dwords) of the fixed-size packets by op, from the layouts above.
_FIXED_DW = {cls.OP: _ndw(cls) for cls in (
    SdmaIndirect, SdmaFence, SdmaTrap, SdmaPollRegmem, SdmaAtomic, SdmaConstFill,
    SdmaTimestampSet)}
_COPY_DW = _ndw(SdmaCopyLinear)
_BROADCAST_DW = _ndw(SdmaCopyLinearBroadcast)
_WRITE_DW = _ndw(SdmaWriteLinear)


def packet_dwords(d: Sequence[int], off: int) -> int:
    """Length in dwords of the SDMA packet at ``d[off]``, as far as the words at hand tell:
    NOP from its header COUNT, COPY_LINEAR from its broadcast bit, WRITE_LINEAR from the count
    in its dword 3 (4 while that dword is not in ``d``); 1 for an op not modelled here."""
    h = d[off]
    op = h & 0xFF
    if op == 0:
        return ((h >> 16) & 0x3FFF) + 1
    if op == 1:
        return _BROADCAST_DW if h >> 27 & 1 else _COPY_DW
    if op == 2:
        if off + 3 >= len(d):
            return _WRITE_DW
        return _WRITE_DW + 1 + (d[off + 3] & 0xFFFFF)
    return _FIXED_DW.get(op, 1)


_TABLES: dict[int, tuple[Target, dict[tuple[int, int], tuple[Layout, ...]]]] = {}


def _table(target: Target | str | None
           ) -> tuple[Target, dict[tuple[int, int], tuple[Layout, ...]]]:
    """(op, sub-op) -> the layouts of that packet for the target's SDMA form (COPY: the plain
    and the broadcast layout)."""
    t = resolve_target(target, "SDMA decoding")
    hit = _TABLES.get(id(t))
    if hit is not None and hit[0] is t:
        return hit
    form = form_of(t)
    table = {(cls.OP, cls.SUB_OP): cls.layouts(form) for cls in PACKET_CLASSES
             if cls is not SdmaCopyLinearBroadcast}
    table[(1, 0)] = (SdmaCopyLinear.layouts(form)[0], SdmaCopyLinearBroadcast.layouts(form)[0])
    hit = (t, table)
    _TABLES[id(t)] = hit
    return hit


def decode(dwords: Any, offset: int = 0, target: Target | str | None = None
           ) -> tuple[SdmaPacket, int]:
    """Decode the SDMA packet at dword ``offset``; returns (packet, length in dwords).

    Raises PacketDecodeError (offsets in dwords) for an unknown op or sub-op, a packet this
    model does not execute, a reserved field value, or a stream that ends inside the packet.
    """
    d = dwords if isinstance(dwords, list) else as_words(dwords)
    t, table = _table(target)
    try:
        h = d[offset]
    except IndexError:
        raise PacketDecodeError("SDMA", offset, None, "the stream ends before the packet header"
                                ) from None
    op = h & 0xFF
    sub = (h >> 8) & 0xFF
    lays = table.get((op, sub))
    if lays is None:
        raise PacketDecodeError("SDMA", offset, h, _unknown(t, op, sub))
    lay = lays[-1] if op == 1 and h >> 27 & 1 else lays[0]
    n = packet_dwords(d, offset)
    if offset + n > len(d):
        if op == 2 and offset + 3 >= len(d):
            why = f"the stream ends inside the {lay.name} packet, before its COUNT dword"
        else:
            why = f"{lay.name} needs {n} dwords but the stream ends after {len(d) - offset}"
        raise PacketDecodeError("SDMA", offset, h, why)
    try:
        return lay.decode(d, offset, n), n
    except _Reserved as e:
        raise PacketDecodeError("SDMA", offset, h, e.reason, field=e.field) from None


def _unknown(t: Target, op: int, sub: int) -> str:
    names = OP_NAMES[t.sdma_version[0]]
    v = ".".join(map(str, t.sdma_version))
    if op not in names:
        return f"unknown SDMA op {op} (sub-op {sub}) on SDMA {v}"
    modelled = any(op == cls.OP for cls in PACKET_CLASSES)
    sub_name = _SUB_OP_NAMES.get(op, {}).get(sub)
    if sub_name is not None:
        return f"{names[op]} sub-op {sub} ({sub_name}) is not supported by this SDMA model"
    if modelled or sub:
        return f"{names[op]}: unknown sub-op {sub} on SDMA {v}"
    return f"{names[op]} is not supported by this SDMA model"


def iter_packets(dwords: Any, target: Target | str | None, start: int = 0,
                 end: int | None = None) -> Iterator[tuple[int, SdmaPacket, int]]:
    """Yield (dword offset, packet, length in dwords) for consecutive packets."""
    return iter_dwords(decode, dwords, target, start, end)


def _skip_length(d: Sequence[int], off: int, avail: int) -> tuple[int, str]:
    """How far to skip an undecodable dword: the length of a known packet kind if it fits."""
    h = d[off]
    n = _OTHER_LENGTHS.get((h & 0xFF, (h >> 8) & 0xFF), 1)
    if n > avail:
        n = 1
    return n, f" ({n} dwords skipped)" if n > 1 else ""


def format_stream(data: Any, target: Target | str | None, start_offset: int = 0,
                  mark: int | None = None, *, limit: int | None = None, raw_limit: int = 4
                  ) -> str:
    """Render a window of an SDMA ring, one line per packet, with **byte** offsets.

    ``data`` is the window (bytes or dwords); ``start_offset`` the ring byte offset of its
    first byte; ``mark`` a byte offset to flag with ``=>`` (the read pointer). Undecodable
    dwords are shown as ``??? 0x…`` with the reason, and decoding continues after them.
    """
    t = resolve_target(target, "SDMA format_stream")
    return format_dword_stream(as_words(data), t, decode, _skip_length,
                               start_offset=start_offset, mark=mark, limit=limit,
                               raw_limit=raw_limit, unit_bytes=1, unit_name="byte")


# ---------------------------------------------------------------------------------------------
# Helpers

def split_copy(target: Target | str, src_addr: int, dst_addr: int, size: int,
               **fields: Any) -> list[SdmaCopyLinear]:
    """COPY_LINEAR packets for a copy of ``size`` bytes, split at the target's
    ``sdma_copy_max_bytes`` (0x400000 on SDMA 4.x, 0x3FFFFFFF on 6.0)."""
    t = resolve_target(target, "split_copy")
    if size <= 0:
        raise PacketError(f"SDMA copy of {size} bytes: size must be positive")
    step = t.sdma_copy_max_bytes
    out = []
    done = 0
    while done < size:
        n = min(step, size - done)
        out.append(SdmaCopyLinear(src_addr=src_addr + done, dst_addr=dst_addr + done, size=n,
                                  **fields))
        done += n
    return out


def fence64(target: Target | str, addr: int, value: int, **fields: Any) -> list[SdmaFence]:
    """A 64-bit write as two FENCEs, low dword at ``addr`` then high dword at ``addr + 4``
    (how the kernel and ROCR write 64-bit values with SDMA)."""
    return [SdmaFence.for_target(target, addr, value & 0xFFFFFFFF, **fields),
            SdmaFence.for_target(target, addr + 4, (value >> 32) & 0xFFFFFFFF, **fields)]


def split_fill(target: Target | str, dst_addr: int, value: int, size: int,
               **fields: Any) -> list[SdmaConstFill]:
    """CONST_FILL packets for ``size`` bytes: dword fills when address and size are dword
    aligned (``value`` is the 32-bit pattern), else byte fills (``value`` & 0xFF)."""
    t = resolve_target(target, "split_fill")
    if size <= 0:
        raise PacketError(f"SDMA fill of {size} bytes: size must be positive")
    dword = not (dst_addr & 3 or size & 3)
    step = t.sdma_copy_max_bytes & ~3 if dword else t.sdma_copy_max_bytes
    data = value & 0xFFFFFFFF if dword else (value & 0xFF) * 0x01010101
    out = []
    done = 0
    while done < size:
        n = min(step, size - done)
        out.append(SdmaConstFill(dst_addr=dst_addr + done, data=data, size=n,
                                 fillsize=2 if dword else 0, **fields))
        done += n
    return out
