"""Fast packet readers for the engines, compiled from part D's packet layouts.

D's decoders build a complete packet dataclass (every field of the form, 20-40 of them for
RELEASE_MEM), which costs more than executing the packet. The engines need a handful of fields
per packet, so this module compiles, from the *same* `Layout` objects (bit positions, biases,
strict enums), small functions that return just those fields as a tuple. Bit positions are
never restated here: D's layouts stay the one source of truth.

Anything unusual (unknown opcode, a length that no layout of the opcode has, a reserved value
in a strict field) falls back to D's own `decode`, so the error raised is D's
PacketDecodeError with D's wording.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from ...packets import pm4 as P
from ...packets import sdma as S
from ...packets.common import Layout, PacketDecodeError

Reader = Callable[[Sequence[int], int, int], tuple]


def compile_reader(layout: Layout, names: Sequence[str], factory: Callable | None = None
                   ) -> Reader:
    """A function (dwords, offset, length) -> (field values in `names` order[, tail]).

    Every strict field of the layout is checked (a reserved value raises LookupError so the
    caller can let D's decoder produce the error); the tail (data dwords, register values) is
    appended as a tuple when the layout has one. With `factory` the values are passed to it
    (a namedtuple class) instead of returned as a tuple.
    """
    ns: dict[str, Any] = {"_tuple": tuple, "_F": factory}
    lines = ["def read(d, o, n):"]
    used_dw: set[int] = set()
    exprs: dict[str, str] = {}
    checks: list[str] = []
    wanted = set(names)
    for i, f in enumerate(layout.fields):
        if f.name not in wanted and not f.strict:
            continue
        terms = []
        for p in f.parts:
            used_dw.add(p.dw)
            t = f"w{p.dw}"
            if p.lo:
                t = f"({t} >> {p.lo})"
            if p.lo + p.width < 32 or p.lo:
                t = f"({t} & {(1 << p.width) - 1:#x})"
            if p.vshift:
                t = f"({t} << {p.vshift})"
            terms.append(t)
        expr = " | ".join(terms) + (f" + {f.bias}" if f.bias else "")
        if f.strict:
            ns[f"OK{i}"] = frozenset(f.names)
            checks.append(f"    if ({expr}) not in OK{i}: raise LookupError({f.name!r})")
        exprs[f.name] = f"({expr})"
    missing = [n for n in names if n not in exprs]
    if missing:
        raise ValueError(f"{layout.name}: no field(s) {missing} in this layout")
    for dw in sorted(used_dw):
        lines.append(f"    w{dw} = d[o + {dw}]")
    lines += checks
    items = [exprs[n] for n in names]
    if layout.tail:
        items.append(f"_tuple(d[o + {layout.ndw}:o + n])")
    if factory is not None:
        lines.append("    return _F(" + ", ".join(items) + ")")
    else:
        lines.append("    return (" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")
    exec("\n".join(lines), ns)
    return ns["read"]


# -- PM4 ----------------------------------------------------------------------------------------

# The fields each PM4 handler needs (names of D's packet dataclass fields).
PM4_FIELDS: dict[type, tuple[str, ...]] = {
    P.Nop: (),
    P.WriteData: ("dst_sel", "wr_one_addr", "addr"),
    P.ReleaseMem: ("dst_sel", "int_sel", "data_sel", "addr", "data", "int_ctxid"),
    P.WaitRegMem: ("function", "mem_space", "operation", "addr", "reference", "mask"),
    P.IndirectBuffer: ("addr", "ib_size", "chain", "valid"),
    P.EventWrite: ("event_type",),
    P.AcquireMem: (),
    P.SetShReg: ("reg_offset",),
    P.SetUconfigReg: ("reg_offset",),
    P.DispatchDirect: ("dim_x", "dim_y", "dim_z", "initiator"),
    P.CopyData: ("src_sel", "dst_sel", "count_sel", "src_addr", "dst_addr"),
    P.DmaData: ("src_sel", "dst_sel", "src_addr", "dst_addr", "byte_count", "sas", "das",
                "saic", "daic"),
    P.AtomicMem: ("atomic", "command", "addr", "src_data", "cmp_data"),
    P.PredExec: ("exec_count", "virtual_xcc_id_select"),
}


class _Op:
    __slots__ = ("cls", "fixed", "short", "var", "var_min")

    def __init__(self, cls: type, layouts: Sequence[Layout]) -> None:
        names = PM4_FIELDS[cls]
        self.cls = cls
        self.fixed: dict[int, Reader] = {}
        self.var: Reader | None = None
        self.var_min = 0
        self.short: Reader | None = None
        for lay in layouts:
            if lay.tail:
                self.var = compile_reader(lay, names)
                self.var_min = lay.ndw + lay.tail_min
            elif lay.length is None:
                self.short = compile_reader(lay, names)      # the one-dword NOP
            else:
                self.fixed[lay.ndw] = compile_reader(lay, names)


class PM4Reader:
    """Reads PM4 packets of one target: `read(dwords, off) -> (packet class, fields, n)`."""

    def __init__(self, target) -> None:
        self.target = target
        self.ops: dict[int, _Op] = {}
        for cls in P.PACKET_CLASSES:
            self.ops[cls.OPCODE] = _Op(cls, cls.layouts(cls.form_for(target)))

    def read(self, d: Sequence[int], off: int) -> tuple[type, tuple, int]:
        h = d[off]
        if h >> 30 == 3:
            op = self.ops.get((h >> 8) & 0xFF)
            if op is not None:
                count = (h >> 16) & 0x3FFF
                try:
                    if count == 0x3FFF and op.short is not None:
                        return op.cls, op.short(d, off, 1), 1
                    n = count + 2
                    if off + n <= len(d):
                        fn = op.fixed.get(n)
                        if fn is not None:
                            return op.cls, fn(d, off, n), n
                        if op.var is not None and n >= op.var_min:
                            return op.cls, op.var(d, off, n), n
                except LookupError:
                    pass
        elif h >> 30 == 2:
            return P.Type2, (), 1
        # Anything else: D's decoder raises the precise PacketDecodeError.
        P.decode(d, off, self.target)
        raise PacketDecodeError("PM4", off, h, "packet not recognised by the engine's reader")


# -- SDMA ---------------------------------------------------------------------------------------

SDMA_FIELDS: dict[type, tuple[str, ...]] = {
    S.SdmaNop: (),
    S.SdmaCopyLinear: ("src_addr", "dst_addr", "size"),
    S.SdmaCopyLinearBroadcast: ("src_addr", "dst1_addr", "dst2_addr", "size"),
    S.SdmaWriteLinear: ("dst_addr",),
    S.SdmaConstFill: ("dst_addr", "data", "size", "fillsize"),
    S.SdmaFence: ("addr", "data"),
    S.SdmaTrap: ("int_context",),
    S.SdmaPollRegmem: ("addr", "reference", "function", "mask", "mem_poll", "hdp_flush",
                       "retry_count"),
    S.SdmaTimestampSet: ("value",),
    S.SdmaTimestampGet: ("addr",),
    S.SdmaTimestampGetGlobal: ("addr",),
    S.SdmaAtomic: ("addr", "atomic_op", "src_data", "cmp_data", "loop"),
    S.SdmaIndirect: ("addr", "ib_size"),
}


class SDMAReader:
    """Reads SDMA packets of one target: `read(dwords, off, n) -> (packet class, fields)`
    where `n` is the packet length the engine computed from the header and `fields` a
    namedtuple with the SDMA_FIELDS of the class (plus `tail` for NOP / WRITE_LINEAR)."""

    def __init__(self, target) -> None:
        self.target = target
        form = (target.sdma_version[0], target.sdma_count_bits)
        self.ops: dict[tuple[int, int], tuple[type, Reader]] = {}
        for cls in S.PACKET_CLASSES:
            lay = cls.layouts(form)[0]
            key = (cls.OP, cls.SUB_OP)
            names = SDMA_FIELDS[cls]
            nt = namedtuple(f"{cls.__name__}Fields", (*names, "tail") if lay.tail else names)
            reader = (cls, compile_reader(lay, names, nt))
            if cls is S.SdmaCopyLinearBroadcast:
                self.bcast = reader
            else:
                self.ops[key] = reader

    def read(self, d: Sequence[int], off: int, n: int) -> tuple[type, tuple]:
        h = d[off]
        hit = self.ops.get((h & 0xFF, (h >> 8) & 0xFF))
        if hit is not None and off + n <= len(d):
            cls, fn = hit
            if cls is S.SdmaCopyLinear and (h >> 27) & 1:
                cls, fn = self.bcast
            try:
                return cls, fn(d, off, n)
            except LookupError:
                pass
        S.decode(d, off, self.target)
        raise PacketDecodeError("SDMA", off, h, "packet not recognised by the engine's reader")
