"""AQL (HSA Architected Queuing Language) packets, and the amd_signal_t / amd_queue_t layouts.

Every AQL packet is 64 bytes; the first uint16 is the header (hsa.h):
``[7:0]`` type, ``[8]`` barrier, ``[10:9]`` acquire fence scope, ``[12:11]`` release fence scope
(0 none, 1 agent, 2 system). Kernel dispatch packets carry ``setup`` (grid dimensions in
``[1:0]``) in the second uint16; AMD vendor-specific packets carry ``AmdFormat`` in byte 2
(1 = PM4 indirect buffer, 2 = BARRIER_VALUE). See facts-sdma-aql-codeobj.md §2-§3.

A producer writes bytes 4..63 first and then publishes the first 32 bits with one release
store (``publish_parts``). The packet processor stops at a slot whose type is INVALID and sets
a consumed slot's header back to INVALID.

Offsets of amd_signal_t and amd_queue_t are exposed as ``StructLayout`` tables:
``AMD_QUEUE.write_dispatch_id == 56``, ``AMD_QUEUE.read_dispatch_id == 128``,
``AMD_SIGNAL.value == 8``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, ClassVar

from ..errors import PacketError
from ..targets.table import Target
from . import pm4
from .common import (
    ArrayField,
    Layout,
    Packet,
    PacketDecodeError,
    StructLayout,
    _Reserved,
    bits,
    flag,
    format_lines,
    resolve_target,
    u32,
    u64,
)

__all__ = [
    "AMD_QUEUE", "AMD_SIGNAL", "HSA_QUEUE", "INVALID_HEADER", "PACKET_BYTES",
    "AgentDispatchPacket", "AqlPacket", "AqlPacketType", "BarrierAndPacket", "BarrierOrPacket",
    "BarrierValuePacket", "DispatchTemplate", "FenceScope", "InvalidPacket", "KernelDispatchPacket",
    "Pm4IbPacket", "QueueProperty", "SignalCondition", "SignalKind", "decode",
    "decode_tmpring_size", "encode_tmpring_size", "format_stream", "header_type",
    "iter_packets", "publish_parts",
]

PACKET_BYTES = 64


class AqlPacketType(IntEnum):
    """hsa_packet_type_t."""

    VENDOR_SPECIFIC = 0
    INVALID = 1
    KERNEL_DISPATCH = 2
    BARRIER_AND = 3
    AGENT_DISPATCH = 4
    BARRIER_OR = 5


class FenceScope(IntEnum):
    """hsa_fence_scope_t."""

    NONE = 0
    AGENT = 1
    SYSTEM = 2


class SignalCondition(IntEnum):
    """hsa_signal_condition_t (BARRIER_VALUE ``cond``)."""

    EQ = 0
    NE = 1
    LT = 2
    GTE = 3


class AmdFormat(IntEnum):
    """AMD vendor-specific packet formats (hsa_ext_amd.h; ROCR AMD_AQL_FORMAT_PM4_IB)."""

    PM4_IB = 1
    BARRIER_VALUE = 2


INVALID_HEADER = AqlPacketType.INVALID   # a ring slot's header before a packet is published

_SCOPES = {0: "none", 1: "agent", 2: "system"}
_TYPE_NAMES = {t.value: t.name for t in AqlPacketType}


def header_type(header: int) -> int:
    """The packet type in a header (uint16 or the first dword)."""
    return header & 0xFF


def publish_parts(packet: bytes) -> tuple[int, bytes]:
    """(first 32 bits as an int, bytes 4..63): write the body, then release-store the dword."""
    if len(packet) != PACKET_BYTES:
        raise PacketError(f"an AQL packet is {PACKET_BYTES} bytes, got {len(packet)}")
    return struct.unpack_from("<I", packet)[0], bytes(packet[4:])


_HDR = (
    flag("barrier", 0, 8, show="nonzero"),
    bits("acquire_fence_scope", 0, 10, 9, names=_SCOPES, strict=True, label="acq",
         show="always"),
    bits("release_fence_scope", 0, 12, 11, names=_SCOPES, strict=True, label="rel",
         show="always"),
)


@dataclass(frozen=True, kw_only=True)
class AqlPacket(Packet):
    """Base of the AQL packets: the header's barrier bit and fence scopes (default: no barrier,
    system-scope acquire and release)."""

    barrier: int = 0
    acquire_fence_scope: int = FenceScope.SYSTEM
    release_fence_scope: int = FenceScope.SYSTEM

    TYPE: ClassVar[int] = -1

    @classmethod
    def layout(cls) -> Layout:
        """The packet's wire layout (AQL formats are the same on every target)."""
        return cls.layouts()[0]

    def _layout(self, target: Target | str | None) -> Layout:
        return self.layout()

    def encode_words(self, target: Target | str | None = None) -> list[int]:
        """The packet as 16 little-endian dwords."""
        return super().encode(target)

    def encode(self, target: Target | str | None = None) -> bytes:  # type: ignore[override]
        """The 64 packet bytes."""
        return struct.pack("<16I", *self.encode_words(target))

    def render(self, target: Target | str | None = None) -> str:
        return " ".join([self.MNEMONIC, *self._render_items()])

    def _render_items(self) -> list[str]:
        return self.layout().render_items(self)

    def __str__(self) -> str:
        return self.render()


# An INVALID slot stops the processor whatever its other header bits hold: not strict.
_HDR_LENIENT = (
    flag("barrier", 0, 8),
    bits("acquire_fence_scope", 0, 10, 9, names=_SCOPES, label="acq"),
    bits("release_fence_scope", 0, 12, 11, names=_SCOPES, label="rel"),
)


def _aql(cls: type[AqlPacket], fields: Sequence[Any], *, const0: int = 0,
         strict_header: bool = True) -> Layout:
    return Layout(f"AQL {cls.MNEMONIC}", cls, (*(_HDR if strict_header else _HDR_LENIENT),
                                                *fields), 16, const={0: cls.TYPE | const0})


@dataclass(frozen=True, kw_only=True)
class KernelDispatchPacket(AqlPacket):
    """hsa_kernel_dispatch_packet_t (type 2). ``grid_size_*`` are work-items per dimension,
    ``kernel_object`` the address of the 64-byte kernel descriptor."""

    kernel_object: int
    workgroup_size_x: int
    grid_size_x: int
    dimensions: int = 1
    workgroup_size_y: int = 1
    workgroup_size_z: int = 1
    grid_size_y: int = 1
    grid_size_z: int = 1
    private_segment_size: int = 0
    group_segment_size: int = 0
    kernarg_address: int = 0
    completion_signal: int = 0

    TYPE = AqlPacketType.KERNEL_DISPATCH
    MNEMONIC = "KERNEL_DISPATCH"

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (
            bits("dimensions", 0, 17, 16, names={1: "1", 2: "2", 3: "3"}, strict=True,
                 fmt="dec", label="dims", show="always"),
            bits("workgroup_size_x", 1, 15, 0, fmt="dec", show="never"),
            bits("workgroup_size_y", 1, 31, 16, fmt="dec", show="never"),
            bits("workgroup_size_z", 2, 15, 0, fmt="dec", show="never"),
            u32("grid_size_x", 3, fmt="dec", show="never"),
            u32("grid_size_y", 4, fmt="dec", show="never"),
            u32("grid_size_z", 5, fmt="dec", show="never"),
            u32("private_segment_size", 6, fmt="dec", label="private"),
            u32("group_segment_size", 7, fmt="dec", label="group"),
            u64("kernel_object", 8, label="kernel", show="always"),
            u64("kernarg_address", 10, label="kernarg", show="always"),
            u64("completion_signal", 14, label="signal"),
        ))]

    def _check(self, target: Target | str | None) -> None:
        if self.workgroup_size_x == 0 or self.workgroup_size_y == 0 or self.workgroup_size_z == 0:
            raise PacketError("AQL KERNEL_DISPATCH: workgroup sizes must be > 0")

    def _render_items(self) -> list[str]:
        lay = self.layout()
        head = lay.render_items(self, skip=[f.name for f in lay.fields[3:]])
        dims = [f"dims={self.dimensions}",
                f"wg={self.workgroup_size_x}x{self.workgroup_size_y}x{self.workgroup_size_z}",
                f"grid={self.grid_size_x}x{self.grid_size_y}x{self.grid_size_z}"]
        return [*head, *dims, *lay.render_items(self, skip=[f.name for f in lay.fields[:4]])]


def _dword_slot(layout: Layout, name: str) -> tuple[int, struct.Struct]:
    """(byte offset, struct) of a field that fills one or two whole dwords, low first."""
    field = layout.by_name[name]
    parts = field.parts
    if field.bias or not parts or any(
            p.lo or p.width != 32 or p.dw != parts[0].dw + i or p.vshift != 32 * i
            for i, p in enumerate(parts)) or len(parts) > 2:
        raise ValueError(f"{layout.name}.{name} is not a whole 32/64-bit field")
    return 4 * parts[0].dw, struct.Struct("<I" if len(parts) == 1 else "<Q")


class DispatchTemplate:
    """A KernelDispatchPacket encoded once, for dispatching one kernel over one geometry again
    and again: `parts` gives `publish_parts` of the packet with new segment sizes, kernarg
    address and completion signal (what changes between such dispatches), written at the
    offsets of the packet's own layout, so the bytes are the ones `encode` gives."""

    PATCHED = ("private_segment_size", "group_segment_size", "kernarg_address",
               "completion_signal")

    def __init__(self, packet: KernelDispatchPacket) -> None:
        self.packet = packet
        self.raw = packet.encode()
        self.header = struct.unpack_from("<I", self.raw)[0]
        self.body = self.raw[4:]
        lay = KernelDispatchPacket.layout()
        slots = []
        for name in self.PATCHED:
            offset, st = _dword_slot(lay, name)
            if offset < 4:
                raise ValueError(f"{name} is in the header dword")
            slots.append((st.pack_into, offset))
        (self._private, self._private_at), (self._group, self._group_at), \
            (self._kernarg, self._kernarg_at), (self._signal, self._signal_at) = slots

    def _patched(self, image: bytearray, skip: int, private_segment_size: int,
                 group_segment_size: int, kernarg_address: int, completion_signal: int
                 ) -> bytearray | None:
        """`image` (the packet from byte `skip` on) with the fields written; None when a value
        does not fit its field."""
        try:
            self._private(image, self._private_at - skip, private_segment_size)
            self._group(image, self._group_at - skip, group_segment_size)
            self._kernarg(image, self._kernarg_at - skip, kernarg_address)
            self._signal(image, self._signal_at - skip, completion_signal)
        except struct.error:
            return None
        return image

    def _encoded(self, private_segment_size: int, group_segment_size: int,
                 kernarg_address: int, completion_signal: int) -> bytes:
        """The packet encoded in full: the encoder's own error for a value it cannot hold."""
        return replace(self.packet, private_segment_size=private_segment_size,
                       group_segment_size=group_segment_size, kernarg_address=kernarg_address,
                       completion_signal=completion_signal).encode()

    def parts(self, private_segment_size: int, group_segment_size: int, kernarg_address: int,
              completion_signal: int) -> tuple[int, bytes | bytearray]:
        """(header dword, bytes 4..63) of the packet with these fields (`publish_parts`)."""
        body = self._patched(bytearray(self.body), 4, private_segment_size,
                             group_segment_size, kernarg_address, completion_signal)
        if body is None:
            return publish_parts(self._encoded(private_segment_size, group_segment_size,
                                               kernarg_address, completion_signal))
        return self.header, body

    def encode(self, private_segment_size: int, group_segment_size: int, kernarg_address: int,
               completion_signal: int) -> bytes | bytearray:
        """The 64 packet bytes with these fields."""
        image = self._patched(bytearray(self.raw), 0, private_segment_size,
                              group_segment_size, kernarg_address, completion_signal)
        if image is None:
            return self._encoded(private_segment_size, group_segment_size, kernarg_address,
                                 completion_signal)
        return image


@dataclass(frozen=True, kw_only=True)
class AgentDispatchPacket(AqlPacket):
    """hsa_agent_dispatch_packet_t (type 4): ``type`` is the agent-defined function,
    ``arg`` four 64-bit arguments."""

    type: int = 0
    return_address: int = 0
    arg: tuple[int, ...] = (0, 0, 0, 0)
    completion_signal: int = 0

    TYPE = AqlPacketType.AGENT_DISPATCH
    MNEMONIC = "AGENT_DISPATCH"
    _TUPLE_FIELDS = ("arg",)

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (
            bits("type", 0, 31, 16, show="always"),
            u64("return_address", 2, label="return"),
            ArrayField("arg", 4, 4),
            u64("completion_signal", 14, label="signal"),
        ))]


class _BarrierBase(AqlPacket):
    def __post_init__(self) -> None:
        super().__post_init__()
        deps = self.dep_signal
        if len(deps) < 5:
            object.__setattr__(self, "dep_signal", (*deps, *(0,) * (5 - len(deps))))

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (ArrayField("dep_signal", 2, 5, label="deps", show="always"),
                           u64("completion_signal", 14, label="signal")))]


@dataclass(frozen=True, kw_only=True)
class BarrierAndPacket(_BarrierBase):
    """hsa_barrier_and_packet_t (type 3): completes when every non-null ``dep_signal`` is 0
    (a null handle counts as satisfied). Up to five handles; shorter tuples are padded."""

    dep_signal: tuple[int, ...] = (0, 0, 0, 0, 0)
    completion_signal: int = 0

    TYPE = AqlPacketType.BARRIER_AND
    MNEMONIC = "BARRIER_AND"
    _TUPLE_FIELDS = ("dep_signal",)


@dataclass(frozen=True, kw_only=True)
class BarrierOrPacket(_BarrierBase):
    """hsa_barrier_or_packet_t (type 5): completes when any non-null ``dep_signal`` is 0
    (a null handle counts as not satisfied)."""

    dep_signal: tuple[int, ...] = (0, 0, 0, 0, 0)
    completion_signal: int = 0

    TYPE = AqlPacketType.BARRIER_OR
    MNEMONIC = "BARRIER_OR"
    _TUPLE_FIELDS = ("dep_signal",)


@dataclass(frozen=True, kw_only=True)
class InvalidPacket(AqlPacket):
    """A slot whose header type is INVALID (1): the processor stops here. Only the header
    bits are kept."""

    TYPE = AqlPacketType.INVALID
    MNEMONIC = "INVALID"

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (), strict_header=False)]

    def _render_items(self) -> list[str]:
        return []


@dataclass(frozen=True, kw_only=True)
class Pm4IbPacket(AqlPacket):
    """AMD vendor-specific packet, AmdFormat 1 (PM4_IB; ROCR amd_aql_pm4_ib): the CP runs the
    PM4 INDIRECT_BUFFER command held in ``ib_jump`` (4 dwords at bytes 4..19);
    ``dw_cnt_remain`` is 0xA. Build one with ``Pm4IbPacket.for_ib(addr, size_dwords, …)``."""

    ib_jump: tuple[int, ...]
    dw_cnt_remain: int = 0xA
    completion_signal: int = 0

    TYPE = AqlPacketType.VENDOR_SPECIFIC
    FORMAT: ClassVar[int] = AmdFormat.PM4_IB
    MNEMONIC = "VENDOR_PM4_IB"
    _TUPLE_FIELDS = ("ib_jump",)

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (ArrayField("ib_jump", 1, 4, elem_dw=1, show="never"),
                           u32("dw_cnt_remain", 5, fmt="dec"),
                           u64("completion_signal", 14, label="signal")),
                     const0=cls.FORMAT << 16)]

    @classmethod
    def for_ib(cls, addr: int, size_dwords: int, *, completion_signal: int = 0,
               **fields: Any) -> Pm4IbPacket:
        """A PM4-IB packet whose jump is ``INDIRECT_BUFFER(addr, size_dwords, VALID)``."""
        jump = pm4.IndirectBuffer(addr=addr, ib_size=size_dwords).encode()
        return cls(ib_jump=tuple(jump), completion_signal=completion_signal, **fields)

    @property
    def indirect_buffer(self) -> pm4.IndirectBuffer:
        """The embedded PM4 INDIRECT_BUFFER (raises PacketDecodeError if it is not one)."""
        p, _ = pm4.decode(list(self.ib_jump), 0, None)
        if not isinstance(p, pm4.IndirectBuffer):
            raise PacketDecodeError("AQL", 4, self.ib_jump[0], f"the PM4-IB jump command is "
                                    f"{p.MNEMONIC}, not INDIRECT_BUFFER", unit="byte")
        return p

    def _render_items(self) -> list[str]:
        try:
            ib = self.indirect_buffer
            jump = f"ib={ib.addr:#x} size={ib.ib_size}" + ("" if ib.valid else " INVALID-IB")
        except PacketError:
            jump = "ib_jump=[" + ",".join(f"{x:#010x}" for x in self.ib_jump) + "]"
        items = self.layout().render_items(self)
        return [*items[:2], jump, *items[2:]]


@dataclass(frozen=True, kw_only=True)
class BarrierValuePacket(AqlPacket):
    """AMD vendor-specific packet, AmdFormat 2 (hsa_amd_barrier_value_packet_t): waits until
    ``(signal value & mask) cond value``; ``signal`` 0 is satisfied. ``value`` and ``mask``
    are int64 in hsa.h; negative numbers are stored two's-complement."""

    signal: int
    value: int
    mask: int = 0xFFFFFFFFFFFFFFFF
    cond: int = SignalCondition.EQ
    completion_signal: int = 0

    TYPE = AqlPacketType.VENDOR_SPECIFIC
    FORMAT: ClassVar[int] = AmdFormat.BARRIER_VALUE
    MNEMONIC = "VENDOR_BARRIER_VALUE"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("value", "mask"):
            v = getattr(self, name)
            if isinstance(v, int) and -(1 << 63) <= v < 0:
                object.__setattr__(self, name, v & 0xFFFFFFFFFFFFFFFF)

    @classmethod
    def _build(cls, form: None) -> list[Layout]:
        return [_aql(cls, (u64("signal", 2, show="always"),
                           u64("value", 4, show="always"),
                           u64("mask", 6, show="always"),
                           u32("cond", 8, names={0: "==", 1: "!=", 2: "<", 3: ">="}, strict=True,
                               show="always"),
                           u64("completion_signal", 14, label="completion")),
                     const0=cls.FORMAT << 16)]


PACKET_CLASSES: tuple[type[AqlPacket], ...] = (
    KernelDispatchPacket, AgentDispatchPacket, BarrierAndPacket, BarrierOrPacket, InvalidPacket,
    Pm4IbPacket, BarrierValuePacket,
)
for _cls in PACKET_CLASSES:
    _cls.layout()

_BY_TYPE = {cls.TYPE: cls.layout() for cls in PACKET_CLASSES if cls.TYPE != 0}
_BY_FORMAT = {Pm4IbPacket.FORMAT: Pm4IbPacket.layout(),
              BarrierValuePacket.FORMAT: BarrierValuePacket.layout()}
_UNPACK = struct.Struct("<16I").unpack_from


def decode(data: Any, offset: int = 0, target: Target | str | None = None
           ) -> tuple[AqlPacket, int]:
    """Decode the 64-byte packet at byte ``offset``; returns (packet, 64).

    Raises PacketDecodeError (byte offsets) for a reserved packet type (> 5), a vendor packet
    with an unknown AMD format, reserved header values (fence scope 3) or grid dimensions
    outside 1..3, and a buffer that ends inside the packet.
    """
    try:
        w = _UNPACK(data, offset)
    except (struct.error, TypeError):
        try:
            mv = memoryview(data).cast("B")
        except TypeError:
            raise PacketError("AQL decode needs a bytes-like buffer") from None
        if offset + PACKET_BYTES > mv.nbytes:
            first = struct.unpack_from("<I", mv, offset)[0] if offset + 4 <= mv.nbytes else None
            raise PacketDecodeError("AQL", offset, first, f"the buffer ends {mv.nbytes - offset} "
                                    f"bytes into the 64-byte packet", unit="byte") from None
        w = _UNPACK(mv, offset)
    h = w[0]
    t = h & 0xFF
    if t == 0:
        fmt = (h >> 16) & 0xFF
        lay = _BY_FORMAT.get(fmt)
        if lay is None:
            raise PacketDecodeError("AQL", offset, h, f"vendor-specific packet with unknown AMD "
                                    f"format {fmt} (known: 1 PM4_IB, 2 BARRIER_VALUE)",
                                    unit="byte", field="format")
    else:
        lay = _BY_TYPE.get(t)
        if lay is None:
            raise PacketDecodeError("AQL", offset, h, f"reserved packet type {t} (defined: "
                                    f"0 vendor, 1 invalid, 2 kernel dispatch, 3 barrier-AND, "
                                    f"4 agent dispatch, 5 barrier-OR)", unit="byte",
                                    field="type")
    try:
        return lay.decode(w, 0, 16), PACKET_BYTES
    except _Reserved as e:
        raise PacketDecodeError("AQL", offset, h, e.reason, unit="byte",
                                field=e.field) from None


def iter_packets(data: Any, start_slot: int = 0) -> Iterator[tuple[int, AqlPacket]]:
    """Yield (slot index, packet) for each 64-byte slot of ``data``."""
    mv = memoryview(data).cast("B")
    for i in range(mv.nbytes // PACKET_BYTES):
        p, _ = decode(mv, i * PACKET_BYTES)
        yield start_slot + i, p


def format_stream(data: Any, target: Target | str | None = None, start_slot: int = 0,
                  mark: int | None = None, *, ring_slots: int | None = None,
                  limit: int | None = None, raw_limit: int = 4) -> str:
    """Render AQL ring slots, one line per packet, labelled with the packet index.

    ``start_slot`` is the packet index (dispatch id) of the first slot in ``data``; ``mark``
    an index to flag with ``=>`` (the read dispatch id). With ``ring_slots`` the label also
    shows the ring position ``index % ring_slots``. Undecodable slots are shown as ``???`` with
    the reason.
    """
    mv = memoryview(data).cast("B")
    entries = []
    for i in range(mv.nbytes // PACKET_BYTES):
        if limit is not None and i >= limit:
            break
        idx = start_slot + i
        raw = struct.unpack_from("<16I", mv, i * PACKET_BYTES)
        try:
            p, _ = decode(mv, i * PACKET_BYTES)
            text = p.render()
        except PacketDecodeError as e:
            text = f"??? {raw[0]:#010x}: {e.reason}"
        label = f"[{idx}]" if ring_slots is None else f"[{idx} @{idx % ring_slots}]"
        entries.append((f"{label:>8}", list(raw), text, mark == idx))
    out = format_lines(entries, raw_limit=raw_limit)
    n = mv.nbytes // PACKET_BYTES
    if mark is not None and not start_slot <= mark < start_slot + n:
        where = "after" if mark >= start_slot + n else "before"
        out += f"\n=> [{mark}]  (mark is {where} this window)"
    return out


# ---------------------------------------------------------------------------------------------
# amd_signal_t, hsa_queue_t, amd_queue_t (ROCR amd_hsa_signal.h, hsa.h, amd_hsa_queue.h;
# offsets cross-checked with gcc offsetof in facts-sdma-aql-codeobj.md §3).

class SignalKind(IntEnum):
    """amd_signal_kind_t (int64 at amd_signal_t + 0)."""

    INVALID = 0
    USER = 1
    DOORBELL = -1
    LEGACY_DOORBELL = -2


class QueueProperty(IntEnum):
    """amd_queue_properties_t bits (amd_queue_t.queue_properties)."""

    ENABLE_TRAP_HANDLER = 1 << 0
    IS_PTR64 = 1 << 1
    ENABLE_TRAP_HANDLER_DEBUG_SGPRS = 1 << 2
    ENABLE_PROFILING = 1 << 3
    USE_SCRATCH_ONCE = 1 << 4


AMD_SIGNAL = StructLayout("amd_signal_t", 64, [
    ("kind", 0, "q"),                 # amd_signal_kind64_t
    ("value", 8, "q"),                # hsa_signal_value_t (union: hardware_doorbell_ptr)
    ("event_mailbox_ptr", 16, "Q"),
    ("event_id", 24, "I"),
    ("reserved1", 28, "I"),
    ("start_ts", 32, "Q"),
    ("end_ts", 40, "Q"),
    ("queue_ptr", 48, "Q"),           # amd_queue_t* (union: reserved2)
    ("reserved3", 56, "I", 2),
])

_HSA_QUEUE_MEMBERS: list[tuple[str, int, str] | tuple[str, int, str, int]] = [
    ("type", 0, "I"),                 # hsa_queue_type32_t: MULTI 0, SINGLE 1, COOPERATIVE 2
    ("features", 4, "I"),             # KERNEL_DISPATCH 1, AGENT_DISPATCH 2
    ("base_address", 8, "Q"),
    ("doorbell_signal", 16, "Q"),
    ("size", 24, "I"),                # in packets, a power of two
    ("reserved1", 28, "I"),
    ("id", 32, "Q"),
]
HSA_QUEUE = StructLayout("hsa_queue_t", 40, _HSA_QUEUE_MEMBERS)

AMD_QUEUE = StructLayout("amd_queue_t", 256, [
    *_HSA_QUEUE_MEMBERS,
    ("caps", 40, "I"),
    ("amd_reserved1", 44, "I", 3),
    ("write_dispatch_id", 56, "Q"),
    ("group_segment_aperture_base_hi", 64, "I"),
    ("private_segment_aperture_base_hi", 68, "I"),
    ("max_cu_id", 72, "I"),
    ("max_wave_id", 76, "I"),
    ("max_legacy_doorbell_dispatch_id_plus_1", 80, "Q"),
    ("legacy_doorbell_lock", 88, "I"),
    ("reserved2", 92, "I", 9),
    ("read_dispatch_id", 128, "Q"),
    ("read_dispatch_id_field_base_byte_offset", 136, "I"),
    ("compute_tmpring_size", 140, "I"),
    ("scratch_resource_descriptor", 144, "I", 4),
    ("scratch_backing_memory_location", 160, "Q"),
    ("scratch_backing_memory_byte_size", 168, "Q"),
    ("scratch_wave64_lane_byte_size", 176, "I"),
    ("queue_properties", 180, "I"),
    ("scratch_last_used_index", 184, "Q"),
    ("queue_inactive_signal", 192, "Q"),
    # 200..255: reserved / alt-scratch fields that differ between ROCR revisions (facts §3.2).
])


def encode_tmpring_size(target: Target | str, waves: int, wave_bytes: int) -> int:
    """A COMPUTE_TMPRING_SIZE value (also amd_queue_t.compute_tmpring_size): WAVES [11:0] and
    WAVESIZE (scratch bytes per wave in the target's unit, rounded up) from bit 12."""
    t = resolve_target(target, "COMPUTE_TMPRING_SIZE")
    unit = t.tmpring_wavesize_unit
    size = -(-wave_bytes // unit)
    if not 0 <= waves < 1 << 12:
        raise PacketError(f"COMPUTE_TMPRING_SIZE: waves={waves} does not fit WAVES [11:0]")
    if not 0 <= size < 1 << t.tmpring_wavesize_bits:
        raise PacketError(f"COMPUTE_TMPRING_SIZE: {wave_bytes} bytes per wave ({size} units of "
                          f"{unit} B) does not fit WAVESIZE ({t.tmpring_wavesize_bits} bits on "
                          f"{t.name})")
    return waves | (size << 12)


def decode_tmpring_size(target: Target | str, value: int) -> tuple[int, int]:
    """(waves, scratch bytes per wave) of a COMPUTE_TMPRING_SIZE value."""
    t = resolve_target(target, "COMPUTE_TMPRING_SIZE")
    size = (value >> 12) & ((1 << t.tmpring_wavesize_bits) - 1)
    return value & 0xFFF, size * t.tmpring_wavesize_unit
