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

import re
from collections import namedtuple
from collections.abc import Callable, Collection, Sequence
from typing import Any

from ...packets import aql as A
from ...packets import pm4 as P
from ...packets import sdma as S
from ...packets.common import Layout, PacketDecodeError

Reader = Callable[[Sequence[int], int, int], tuple]


def _field_code(layout: Layout, names: Sequence[str], indent: str, reserved: str,
                ns: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Lines that load the dwords the fields `names` and the strict fields of `layout` use
    (as w<dw>) and check every strict field (running `reserved` on a reserved value), and
    each wanted field's expression; the sets of valid values go to `ns`."""
    used_dw: set[int] = set()
    exprs: dict[str, str] = {}
    checks: list[str] = []
    wanted = set(names)
    for i, f in enumerate(layout.fields):
        if f.name not in wanted and not f.strict:
            continue
        used_dw.update(p.dw for p in f.parts)
        expr = f.expr()
        if f.strict:
            ns[f"OK{i}"] = frozenset(f.names)
            checks.append(f"{indent}if ({expr}) not in OK{i}: " + reserved.format(f.name))
        exprs[f.name] = f"({expr})"
    missing = [n for n in names if n not in exprs]
    if missing:
        raise ValueError(f"{layout.name}: no field(s) {missing} in this layout")
    return [f"{indent}w{dw} = d[o + {dw}]" for dw in sorted(used_dw)] + checks, exprs


def compile_reader(layout: Layout, names: Sequence[str], factory: Callable | None = None
                   ) -> Reader:
    """A function (dwords, offset, length) -> (field values in `names` order[, tail]).

    Every strict field of the layout is checked (a reserved value raises LookupError so the
    caller can let D's decoder produce the error); the tail (data dwords, register values) is
    appended as a tuple when the layout has one. With `factory` the values are passed to it
    (a namedtuple class) instead of returned as a tuple.
    """
    ns: dict[str, Any] = {"_tuple": tuple, "_F": factory}
    body, exprs = _field_code(layout, names, "    ", "raise LookupError({!r})", ns)
    lines = ["def read(d, o, n):", *body]
    items = [exprs[n] for n in names]
    if layout.tail:
        items.append(f"_tuple(d[o + {layout.ndw}:o + n])")
    if factory is not None:
        lines.append("    return _F(" + ", ".join(items) + ")")
    else:
        lines.append("    return (" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")
    exec("\n".join(lines), ns)
    read = ns["read"]
    read.strict_fields = tuple(f.name for f in layout.fields if f.strict)
    return read


RegisterRun = Callable[[Sequence[int], int, int, int, list, int], tuple[int, int]]


def compile_register_run(cls: type, layout: Layout, fixed: Collection[int]) -> RegisterRun:
    """For `cls`, a register-setting packet (REG_OFFSET, then the values as the tail:
    SET_SH_REG, SET_UCONFIG_REG) read with its variable-length `layout`: a function
    (dwords, offset, end, limit, regs, size) -> (packets, offset after them) that writes
    consecutive such packets into the register file `regs`, at most `limit` of them.

    It takes exactly the headers PM4Reader reads with `layout` (type 3, the opcode, a length
    no layout in `fixed` has, at least the layout's minimum) and stops before anything else:
    another packet, one not complete before `end`, a reserved value in a strict field, or
    registers past `size`. The caller reads that packet its usual way (and reports it).
    One or two values are stored one by one (cheaper than a slice store).
    """
    ns: dict[str, Any] = {"FIXED": frozenset(fixed)}
    body, exprs = _field_code(layout, ("reg_offset",), "        ", "break", ns)
    reg = exprs["reg_offset"]
    for line in [b for b in body if b.lstrip().startswith("w")]:
        w = re.compile(rf"\b{line.split('=')[0].strip()}\b")
        if sum(len(w.findall(other)) for other in body) == 1:   # only the offset reads it
            body.remove(line)
            reg = w.sub(line.split("=")[1].strip(), reg)
    tail = layout.ndw                    # the values start at this dword
    v = "c" if tail == 2 else f"(c + {2 - tail})"       # values: COUNT + 2 - tail
    bad_length = f"c < {tail + layout.tail_min - 2}" + (" or c + 2 in FIXED" if fixed else "")
    lines = ["def run(d, o, end, limit, regs, size):",
             "    k = 0",
             "    while k < limit and o < end:",
             "        h = d[o]",
             "        c = (h >> 16) & 0x3FFF",
             "        e = o + c + 2",
             f"        if h & 0xC000FF00 != {0xC0000000 | (cls.OPCODE << 8):#x} or e > end or "
             f"{bad_length}: break",
             *body,
             f"        r = {reg}",
             f"        if r + {v} > size: break",
             f"        if {v} == 1:",
             f"            regs[r] = d[o + {tail}]",
             f"        elif {v} == 2:",
             f"            regs[r] = d[o + {tail}]",
             f"            regs[r + 1] = d[o + {tail + 1}]",
             "        else:",
             f"            regs[r:r + {v}] = d[o + {tail}:e]",
             "        o = e",
             "        k += 1",
             "    return k, o"]
    exec("\n".join(lines), ns)
    return ns["run"]


def strict_fields(reader: Reader) -> tuple[str, ...]:
    """The strict fields `reader` checks (a reserved value raises LookupError); a reader
    not made by compile_reader counts as checking something."""
    return getattr(reader, "strict_fields", ("?",))


_READERS: dict[tuple[type, int], Any] = {}


def reader_for(kind: type, target) -> Any:
    """The `kind` reader (PM4Reader, SDMAReader) of `target`, built once per target."""
    key = (kind, id(target))
    r = _READERS.get(key)
    if r is None or r.target is not target:
        r = _READERS[key] = kind(target)
    return r


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


# Register-setting packets PM4Reader also compiles a run writer for (compile_register_run;
# SET_UCONFIG_REG has the same form but no runs in practice: it is read one by one).
PM4_REGISTER_RUNS = (P.SetShReg,)


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


def _no_fields(d: Sequence[int], o: int, n: int) -> tuple:
    return ()


_no_fields.strict_fields = ()


class PM4Reader:
    """Reads PM4 packets of one target: `read(dwords, off) -> (packet class, fields, n)`.

    Ring headers repeat, so what a header selects (class, field reader, length) is cached by
    the header dword; the first sight of a header resolves it from the layouts.
    `register_runs` holds a run writer (compile_register_run) per PM4_REGISTER_RUNS class."""

    CACHE_LIMIT = 4096

    def __init__(self, target) -> None:
        self.target = target
        self.ops: dict[int, _Op] = {}
        self.register_runs: dict[type, RegisterRun] = {}
        for cls in P.PACKET_CLASSES:
            layouts = cls.layouts(cls.form_for(target))
            op = self.ops[cls.OPCODE] = _Op(cls, layouts)
            if cls in PM4_REGISTER_RUNS and op.var is not None and op.short is None:
                var = next(lay for lay in layouts if lay.tail)
                self.register_runs[cls] = compile_register_run(cls, var, op.fixed)
        self._by_header: dict[int, tuple[type, Reader, int]] = {}

    def read(self, d: Sequence[int], off: int) -> tuple[type, tuple, int]:
        h = d[off]
        hit = self._by_header.get(h)
        if hit is None:
            hit = self._resolve(h)
        if hit is not None:
            cls, fn, n = hit
            if off + n <= len(d):
                try:
                    return cls, fn(d, off, n), n
                except LookupError:      # a strict field holds a reserved value
                    pass
        # Anything else: D's decoder raises the precise PacketDecodeError.
        P.decode(d, off, self.target)
        raise PacketDecodeError("PM4", off, h, "packet not recognised by the engine's reader")

    def _resolve(self, h: int) -> tuple[type, Reader, int] | None:
        """(class, reader, length) the header `h` selects, None if no layout fits it."""
        hit: tuple[type, Reader, int] | None = None
        kind = h >> 30
        if kind == 2:
            hit = (P.Type2, _no_fields, 1)
        elif kind == 3:
            op = self.ops.get((h >> 8) & 0xFF)
            if op is not None:
                count = (h >> 16) & 0x3FFF
                n = count + 2
                if count == 0x3FFF and op.short is not None:
                    hit = (op.cls, op.short, 1)
                elif n in op.fixed:
                    hit = (op.cls, op.fixed[n], n)
                elif op.var is not None and n >= op.var_min:
                    hit = (op.cls, op.var, n)
        if hit is not None and len(self._by_header) < self.CACHE_LIMIT:
            self._by_header[h] = hit
        return hit


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
        form = S.form_of(target)
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


# -- AQL ----------------------------------------------------------------------------------------

# The fields of a kernel dispatch packet the packet processor reads (D's dataclass field names).
AQL_DISPATCH_FIELDS = ("dimensions", "workgroup_size_x", "workgroup_size_y", "workgroup_size_z",
                       "grid_size_x", "grid_size_y", "grid_size_z", "private_segment_size",
                       "group_segment_size", "kernel_object", "kernarg_address",
                       "completion_signal")
KernelDispatchFields = namedtuple("KernelDispatchFields", AQL_DISPATCH_FIELDS)
_DISPATCH_READER: list[Reader] = []


def read_kernel_dispatch(d: Sequence[int]) -> KernelDispatchFields:
    """The AQL_DISPATCH_FIELDS of the kernel dispatch packet in the 16 dwords `d` (its header
    type already checked); LookupError when a strict field (fence scope, dimensions) holds a
    reserved value, so the caller lets D's `decode` name it."""
    if not _DISPATCH_READER:
        _DISPATCH_READER.append(compile_reader(A.KernelDispatchPacket.layout(),
                                               AQL_DISPATCH_FIELDS, KernelDispatchFields))
    return _DISPATCH_READER[0](d, 0, 16)
