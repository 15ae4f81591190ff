"""Shared machinery of the PM4, SDMA and AQL packet modules: field layouts as data.

A packet kind is a frozen dataclass with named fields (GPU names: ``addr``, ``data_sel``, …).
Its wire format is a :class:`Layout`: a list of :class:`Field` specs, each one or more bit ranges
in the packet's dwords. The same Layout is compiled once into an encoder and a decoder (small
generated Python functions), so the builder and the parser cannot disagree, and decoding does
no per-call introspection of dataclass fields.

Conventions:
- Dword 0 is the first dword of the packet (the PM4 or SDMA header; AQL bytes 0..3).
- A field's value is an unsigned integer. Fields split over several dwords (64-bit addresses)
  list one :class:`Part` per dword; bits below the lowest part are alignment bits that must be 0.
- Decoding is lossless for every field a layout defines and ignores undefined (reserved) bits,
  as the hardware does; a field value the sources name as reserved (``strict`` enum) is an error.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, fields
from typing import Any, ClassVar

from ..errors import PacketError
from ..targets.table import Target, get_target

__all__ = [
    "CACHE_POLICY_NAMES", "TC_OP_NAMES", "ArrayField", "Field", "Layout", "Packet", "PacketDecodeError",
    "Part", "StructField", "StructLayout", "addr", "as_words", "bits", "flag",
    "format_dword_stream", "format_lines", "hex_list", "iter_dwords", "resolve_target", "u32", "u64",
]


# ---------------------------------------------------------------------------------------------
# Errors

class PacketDecodeError(PacketError):
    """A packet in a ring, IB or AQL slot cannot be decoded.

    Carries ``engine`` ("PM4", "SDMA", "AQL"), ``offset`` (in ``unit``: "dword", "byte"),
    ``header`` (the first dword of the packet, None if there was none), ``reason`` and
    ``field``: the name of the field whose value is reserved or unknown (``"type"``,
    ``"format"``, a layout field such as ``"dimensions"``), None for other errors.
    """

    def __init__(self, engine: str, offset: int, header: int | None, reason: str,
                 *, unit: str = "dword", field: str | None = None) -> None:
        where = f"{engine} packet at {unit} offset {offset:#x}"
        if header is not None:
            where += f" (header {header:#010x})"
        super().__init__(f"{where}: {reason}")
        self.engine = engine
        self.offset = offset
        self.header = header
        self.reason = reason
        self.unit = unit
        self.field = field


class _Reserved(Exception):
    """Internal: a strict field holds a value the sources name as reserved/undefined."""

    def __init__(self, layout: Layout, field: Field, value: int) -> None:
        super().__init__(field.name)
        self.field = field.name
        allowed = ", ".join(f"{k} ({v})" for k, v in sorted(field.names.items()))
        self.reason = (f"{layout.name}.{field.name} = {value} is reserved "
                       f"({field.where()}); defined values: {allowed}")


# ---------------------------------------------------------------------------------------------
# Field specs

class Part:
    """``width`` bits at ``lo`` of dword ``dw`` hold value bits ``[vshift + width - 1 : vshift]``."""

    __slots__ = ("dw", "lo", "vshift", "width")

    def __init__(self, dw: int, lo: int, width: int, vshift: int = 0) -> None:
        if not (lo >= 0 and width > 0 and lo + width <= 32):
            raise ValueError(f"bad part: dw{dw} [{lo + width - 1}:{lo}]")
        self.dw, self.lo, self.width, self.vshift = dw, lo, width, vshift

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lo

    def __repr__(self) -> str:
        return f"dw{self.dw}[{self.lo + self.width - 1}:{self.lo}]"


class Field:
    """One named field: its parts, value names, display rules.

    names:  value -> display name (an enum); with ``strict`` every other value is reserved.
    bias:   stored = value - bias (SDMA byte counts are stored N-1: bias=1).
    fmt:    "hex", "dec", "flag" (shown as its label when set) or "enum".
    show:   "nonzero" (default: shown when the value is not 0), "always", "never".
    label:  short name used in renderings (default: the field name).
    """

    __slots__ = ("bias", "fmt", "label", "name", "names", "parts", "show", "strict")

    def __init__(self, name: str, parts: Sequence[Part], *, names: Mapping[int, str] | None = None,
                 strict: bool = False, bias: int = 0, fmt: str | None = None,
                 label: str | None = None, show: str = "nonzero") -> None:
        self.name = name
        self.parts = tuple(parts)
        self.names = dict(names) if names else {}
        self.strict = strict
        self.bias = bias
        total = sum(p.width for p in self.parts)
        self.fmt = fmt or ("enum" if self.names else "flag" if total == 1 else "hex")
        self.label = label or name
        self.show = show

    @property
    def covered(self) -> int:
        """Mask of the value bits this field can hold."""
        m = 0
        for p in self.parts:
            m |= ((1 << p.width) - 1) << p.vshift
        return m

    def where(self) -> str:
        return " + ".join(repr(p) for p in self.parts)

    def expr(self) -> str:
        """Python expression of this field's value (bias included) over local variables
        ``w0``, ``w1``, … holding the packet's dwords; used by the generated decoders."""
        terms = []
        for p in self.parts:
            t = f"w{p.dw}"
            if p.lo:
                t = f"({t} >> {p.lo})"
            if p.lo + p.width < 32:
                t = f"({t} & {(1 << p.width) - 1:#x})"
            if p.vshift:
                t = f"({t} << {p.vshift})"
            terms.append(t)
        e = " | ".join(terms)
        return f"({e}) + {self.bias}" if self.bias else e

    def extract(self, words: Sequence[int]) -> int:
        """Value of this field in a packet's words (slow path; decoders are generated)."""
        v = 0
        for p in self.parts:
            v |= ((words[p.dw] >> p.lo) & ((1 << p.width) - 1)) << p.vshift
        return v + self.bias


class ArrayField(Field):
    """``count`` consecutive unsigned elements of ``elem_dw`` dwords each (1 or 2), from dword
    ``dw``; the dataclass field is a tuple of exactly ``count`` values."""

    __slots__ = ("count", "dw", "elem_dw")

    def __init__(self, name: str, dw: int, count: int, elem_dw: int = 2, **kw: Any) -> None:
        if elem_dw not in (1, 2):
            raise ValueError("array elements are 1 or 2 dwords")
        parts = [Part(dw + i, 0, 32) for i in range(count * elem_dw)]
        super().__init__(name, parts, **kw)
        self.dw, self.count, self.elem_dw = dw, count, elem_dw

    @property
    def covered(self) -> int:
        return (1 << (32 * self.elem_dw)) - 1

    def where(self) -> str:
        return f"dw{self.dw}..dw{self.dw + self.count * self.elem_dw - 1}"


def bits(name: str, dw: int, hi: int, lo: int | None = None, **kw: Any) -> Field:
    """A field in bits [hi:lo] of dword ``dw`` (a single bit when ``lo`` is omitted)."""
    lo = hi if lo is None else lo
    return Field(name, [Part(dw, lo, hi - lo + 1)], **kw)


def flag(name: str, dw: int, bit: int, **kw: Any) -> Field:
    """A one-bit field."""
    return Field(name, [Part(dw, bit, 1)], **kw)


def u32(name: str, dw: int, **kw: Any) -> Field:
    """A whole dword."""
    return Field(name, [Part(dw, 0, 32)], **kw)


def u64(name: str, dw: int, **kw: Any) -> Field:
    """A 64-bit value: low half in dword ``dw``, high half in ``dw + 1``."""
    return Field(name, [Part(dw, 0, 32, 0), Part(dw + 1, 0, 32, 32)], **kw)


def addr(name: str, dw: int, align_bits: int, hi_bits: int = 32, **kw: Any) -> Field:
    """A byte address whose low dword stores bits [31:align_bits] in place (``ADDR_LO [31:n]``)
    and whose next dword stores bits [32 + hi_bits - 1 : 32]."""
    return Field(name, [Part(dw, align_bits, 32 - align_bits, align_bits),
                        Part(dw + 1, 0, hi_bits, 32)], **kw)


# ---------------------------------------------------------------------------------------------
# Layouts (compiled to an encoder and a decoder)

_new = object.__new__
_setattr = object.__setattr__
_MISSING_ATTR = object()


class Layout:
    """The wire format of one packet kind (one variant of it: a target form, a length).

    ndw:      dwords of the fixed part (header included).
    const:    {dword index: bits} ORed in by the encoder (opcodes, packet type bits).
    tail:     name of a tuple field filling dwords ``ndw..`` (data dwords, register values).
    tail_min / tail_max: bounds of the tail length.
    length:   (dw, lo, width, bias): a field the encoder sets to ``total_dwords + bias``
              (PM4 COUNT, SDMA NOP count); decoders use it to find the end of the packet.
    """

    def __init__(self, name: str, cls: type, fields_: Iterable[Field], ndw: int, *,
                 const: Mapping[int, int] | None = None, tail: str | None = None,
                 tail_min: int = 0, tail_max: int | None = None,
                 length: tuple[int, int, int, int] | None = None, note: str = "") -> None:
        self.name = name
        self.cls = cls
        self.fields = tuple(fields_)
        self.ndw = ndw
        self.const = dict(const or {})
        self.tail = tail
        self.tail_min = tail_min
        self.tail_max = tail_max
        self.length = length
        self.note = note
        self.by_name = {f.name: f for f in self.fields}
        for f in self.fields:
            for p in f.parts:
                if p.dw >= ndw:
                    raise ValueError(f"{name}.{f.name}: {p!r} outside the {ndw}-dword packet")
        declared = {f.name: f for f in fields(cls)}
        for n in self.by_name:
            if n not in declared:
                raise ValueError(f"{name}: field {n!r} is not a field of {cls.__name__}")
        self.absent: dict[str, Any] = {}
        for n, f in declared.items():
            if n in self.by_name or n == tail:
                continue
            if f.default is not MISSING:
                self.absent[n] = f.default
            elif f.default_factory is not MISSING:
                self.absent[n] = f.default_factory()
            else:
                raise ValueError(f"{name}: required field {n!r} has no place in this layout")
        self.field_order = tuple(declared)
        self.encode = self._compile_encoder()
        self.decode = self._compile_decoder()

    # -- code generation ------------------------------------------------------------------

    def _compile_encoder(self) -> Callable[[Any], list[int]]:
        ns: dict[str, Any] = {"_err": self._encode_error, "_absent_err": self._absent_error,
                              "_tail_err": self._tail_error}
        lines = ["def encode(p):"]
        words = [self.const.get(i, 0) for i in range(self.ndw)]
        lines.append(f"    w = {words!r}")
        for i, f in enumerate(self.fields):
            ns[f"F{i}"] = f
            if isinstance(f, ArrayField):
                lines.append(f"    a = p.{f.name}")
                lines.append(f"    if len(a) != {f.count}: _err(p, F{i}, a)")
                for k in range(f.count):
                    dw = f.dw + k * f.elem_dw
                    lines.append(f"    v = a[{k}]")
                    lines.append(f"    if v & {~f.covered}: _err(p, F{i}, a)")
                    lines.append(f"    w[{dw}] = v & 0xFFFFFFFF")
                    if f.elem_dw == 2:
                        lines.append(f"    w[{dw + 1}] = v >> 32")
                continue
            lines.append(f"    v = p.{f.name}" + (f" - {f.bias}" if f.bias else ""))
            lines.append(f"    if v & {~f.covered}: _err(p, F{i}, v)")
            if f.strict:
                ns[f"OK{i}"] = frozenset(f.names)
                lines.append(f"    if v not in OK{i}: _err(p, F{i}, v, True)")
            for p in f.parts:
                m = (1 << p.width) - 1
                if len(f.parts) == 1 and not p.vshift:
                    expr = "v"  # the range check above guarantees it fits
                else:
                    expr = f"((v >> {p.vshift}) & {m:#x})" if p.vshift else f"(v & {m:#x})"
                lines.append(f"    w[{p.dw}] |= {expr} << {p.lo}" if p.lo else
                             f"    w[{p.dw}] |= {expr}")
        for n, default in self.absent.items():
            ns[f"D_{n}"] = default
            lines.append(f"    if p.{n} != D_{n}: _absent_err(p, {n!r})")
        if self.tail:
            lines.append(f"    t = p.{self.tail}")
            lines.append(f"    if len(t) < {self.tail_min}"
                         + (f" or len(t) > {self.tail_max}" if self.tail_max is not None else "")
                         + ": _tail_err(p, t)")
            lines.append("    for x in t:")
            lines.append("        if x & -0x100000000: _tail_err(p, t, x)")
            lines.append("    w.extend(t)")
        if self.length:
            dw, lo, width, bias = self.length
            lines.append(f"    n = len(w) + {bias}")
            lines.append(f"    if n < 0 or n >> {width}: _tail_err(p, w, None, n)")
            lines.append(f"    w[{dw}] |= n << {lo}")
        lines.append("    return w")
        exec("\n".join(lines), ns)  # generated from the layout tables above
        return ns["encode"]

    def _compile_decoder(self) -> Callable[[Sequence[int], int, int], Any]:
        ns: dict[str, Any] = {"_new": _new, "_setattr": _setattr, "_cls": self.cls,
                              "_Reserved": _Reserved, "_layout": self, "_tuple": tuple}
        used = sorted({p.dw for f in self.fields for p in f.parts})  # ArrayField: all its dws
        lines = ["def decode(d, o, n):"]
        for dw in used:
            lines.append(f"    w{dw} = d[o + {dw}]" if dw else "    w0 = d[o]")
        items: dict[str, str] = {}
        for i, f in enumerate(self.fields):
            if isinstance(f, ArrayField):
                elems = []
                for k in range(f.count):
                    dw = f.dw + k * f.elem_dw
                    elems.append(f"w{dw}" if f.elem_dw == 1 else f"(w{dw} | (w{dw + 1} << 32))")
                items[f.name] = "(" + ", ".join(elems) + ",)"
                continue
            expr = f.expr()
            if f.strict:
                ns[f"F{i}"] = f
                ns[f"OK{i}"] = frozenset(f.names)
                lines.append(f"    v{i} = {expr}")
                lines.append(f"    if v{i} not in OK{i}: raise _Reserved(_layout, F{i}, v{i})")
                items[f.name] = f"v{i}"
            else:
                items[f.name] = expr
        for n, default in self.absent.items():
            # A dataclass keeps a plain default as a class attribute: the instance dict need not
            # hold it (eq/repr/getattr read it from the class). Only mutable defaults are copied.
            if getattr(self.cls, n, _MISSING_ATTR) is not default:
                ns[f"D_{n}"] = default
                items[n] = f"D_{n}"
        if self.tail:
            items[self.tail] = f"_tuple(d[o + {self.ndw}:o + n])"
        body = ", ".join(f"{n!r}: {items[n]}" for n in self.field_order if n in items)
        lines.append("    obj = _new(_cls)")
        lines.append(f"    _setattr(obj, '__dict__', {{{body}}})")
        lines.append("    return obj")
        exec("\n".join(lines), ns)  # generated from the layout tables above
        return ns["decode"]

    # -- errors -----------------------------------------------------------------------------

    def _encode_error(self, p: Any, f: Field, v: Any, reserved: bool = False) -> None:
        if isinstance(f, ArrayField):
            raise PacketError(f"{self.name}: {f.name} must be {f.count} unsigned "
                              f"{32 * f.elem_dw}-bit values, got {v!r}")
        raw = v
        shown = raw + f.bias
        if reserved:
            allowed = ", ".join(f"{k} ({n})" for k, n in sorted(f.names.items()))
            raise PacketError(f"{self.name}: {f.name}={shown} is a reserved value ({f.where()}); "
                              f"defined values: {allowed}")
        if not isinstance(shown, int):
            raise PacketError(f"{self.name}: {f.name}={shown!r} is not an integer")
        lowest = min(p.vshift for p in f.parts)
        if raw >= 0 and lowest and raw & ((1 << lowest) - 1) and not raw >> (lowest + sum(
                p.width for p in f.parts)):
            raise PacketError(f"{self.name}: {f.name}={shown:#x} must be {1 << lowest}-byte aligned "
                              f"(the packet stores bits [{lowest + sum(p.width for p in f.parts) - 1}"
                              f":{lowest}] in {f.where()})")
        lo = f.bias
        hi = f.covered + f.bias
        num = (lambda x: f"{x:#x}") if f.fmt == "hex" else str
        raise PacketError(f"{self.name}: {f.name}={num(shown)} does not fit its field {f.where()} "
                          f"(allowed {num(lo)}..{num(hi)}"
                          + (f", multiple of {1 << lowest}" if lowest else "") + ")")

    def find_non_integer(self, p: Any) -> str:
        """Name the first field of ``p`` that is not an integer (for TypeError messages)."""
        for f in self.fields:
            v = getattr(p, f.name)
            vals = v if isinstance(f, ArrayField) else (v,)
            if not all(isinstance(x, int) for x in vals):
                return f"{self.name}: {f.name}={v!r} is not an integer"
        if self.tail and not all(isinstance(x, int) for x in getattr(p, self.tail)):
            return f"{self.name}: {self.tail} holds a value that is not an integer"
        return f"{self.name}: a field is not an integer"

    def _absent_error(self, p: Any, name: str) -> None:
        note = f" ({self.note})" if self.note else ""
        raise PacketError(f"{self.name}: field {name}={getattr(p, name)!r} does not exist in this "
                          f"packet form{note}; leave it at {self.absent[name]!r}")

    def _tail_error(self, p: Any, t: Sequence[int], x: int | None = None,
                    n: int | None = None) -> None:
        if n is not None:
            raise PacketError(f"{self.name}: {len(t)} dwords do not fit the length field "
                              f"{self.length}")
        if x is not None:
            raise PacketError(f"{self.name}: {self.tail} holds {x!r}, not a 32-bit unsigned dword")
        rng = f"at least {self.tail_min}" + (f" and at most {self.tail_max}"
                                             if self.tail_max is not None else "")
        raise PacketError(f"{self.name}: {self.tail} has {len(t)} dwords; needs {rng}")

    # -- rendering ----------------------------------------------------------------------------

    def render_items(self, p: Any, skip: Iterable[str] = ()) -> list[str]:
        """``label=value`` strings for the fields worth showing."""
        out = []
        skipped = set(skip)
        for f in self.fields:
            if f.show == "never" or f.name in skipped:
                continue
            v = getattr(p, f.name)
            if isinstance(f, ArrayField):
                if f.show == "nonzero" and not any(v):
                    continue
                out.append(f"{f.label}=[{','.join(f'{x:#x}' for x in v)}]")
                continue
            if f.show == "nonzero" and not v:
                continue
            out.append(render_value(f, v))
        return out


def render_value(f: Field, v: int) -> str:
    """One field as text: ``label``, ``label=0x10``, ``label=5`` or ``label=">="``."""
    if f.fmt == "flag":
        return f.label if v == 1 else f"{f.label}={v}"
    if f.fmt == "enum":
        name = f.names.get(int(v))
        if name is None:
            return f"{f.label}={int(v):#x}"
        return f"{f.label}={name}" if name.replace("_", "").isalnum() else f'{f.label}="{name}"'
    if f.fmt == "dec":
        return f"{f.label}={int(v)}"
    return f"{f.label}={int(v):#x}"


def hex_list(values: Sequence[int], limit: int = 8) -> str:
    """``[0x1,0x2,…]``: the first ``limit`` values of a data tail."""
    shown = ",".join(f"{v:#x}" for v in values[:limit])
    return f"[{shown}{',…' if len(values) > limit else ''}]"


def render_flags(value: int, names: Mapping[int, str], multi: Mapping[str, tuple[int, int]] = {}
                 ) -> str:
    """A register value as ``NAME|NAME|FIELD=n`` (bit names plus multi-bit sub-fields)."""
    parts = [n for bit, n in sorted(names.items()) if value >> bit & 1]
    known = 0
    for bit in names:
        known |= 1 << bit
    for n, (lo, width) in multi.items():
        known |= ((1 << width) - 1) << lo
        sub = (value >> lo) & ((1 << width) - 1)
        if sub:
            parts.append(f"{n}={sub}")
    rest = value & ~known
    if rest:
        parts.append(f"{rest:#x}")
    return "|".join(parts) if parts else "0"


# ---------------------------------------------------------------------------------------------
# Packet base class

class Packet:
    """Base of every packet dataclass: its wire layouts per form (a target variant such as the
    RELEASE_MEM form or the SDMA version), encoding, and the normalization of string enum
    names and list tails."""

    MNEMONIC: ClassVar[str] = "?"
    _STR_ENUMS: ClassVar[dict[str, dict[str, int]]] = {}
    _TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ()
    _CACHE: ClassVar[dict[Any, tuple[Layout, ...]]]

    @classmethod
    def _build(cls, form: Any) -> list[Layout]:
        """The wire layouts of this packet in one form."""
        raise NotImplementedError

    @classmethod
    def layouts(cls, form: Any = None) -> tuple[Layout, ...]:
        """The wire layouts of this packet for one form (built once per class and form)."""
        cache = cls.__dict__.get("_CACHE")
        if cache is None:
            cache = {}
            cls._CACHE = cache
        lays = cache.get(form)
        if lays is None:
            lays = tuple(cls._build(form))
            cache[form] = lays
            cls._register_names(lays)
        return lays

    def _layout(self, target: Target | str | None) -> Layout:
        """The layout this packet encodes to for ``target``."""
        raise NotImplementedError

    def _check(self, target: Target | str | None) -> None:
        """Cross-field rules the bit layout cannot express (alignment by mode, …)."""

    def encode(self, target: Target | str | None = None) -> list[int]:
        """The packet as little-endian dwords (header first) in ``target``'s form."""
        lay = self._layout(target)
        try:
            self._check(target)
            return lay.encode(self)
        except TypeError:
            raise PacketError(lay.find_non_integer(self)) from None

    def __post_init__(self) -> None:
        for name, mapping in self._STR_ENUMS.items():
            v = getattr(self, name)
            if isinstance(v, str):
                key = v.lower()
                if key not in mapping:
                    raise PacketError(f"{self.MNEMONIC}: {name}={v!r} is not a known name; "
                                      f"use one of {sorted(mapping)} or an integer")
                _setattr(self, name, mapping[key])
        for name in self._TUPLE_FIELDS:
            v = getattr(self, name)
            if v is not None and not isinstance(v, tuple):
                _setattr(self, name, tuple(int(x) for x in v))

    @classmethod
    def _register_names(cls, layouts: Iterable[Layout]) -> None:
        """Let constructors accept enum display names (``function=">="``) for these layouts."""
        enums: dict[str, dict[str, int]] = dict(cls._STR_ENUMS)
        for lay in layouts:
            for f in lay.fields:
                if f.names:
                    m = enums.setdefault(f.name, {})
                    for k, n in f.names.items():
                        m.setdefault(n.lower(), k)
        cls._STR_ENUMS = enums


# ---------------------------------------------------------------------------------------------
# Inputs and helpers

def resolve_target(target: Target | str | None, what: str = "this packet") -> Target:
    """A Target from a Target or an LLVM processor name; a clear error when missing."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        try:
            return get_target(target)
        except KeyError as e:
            raise PacketError(str(e.args[0])) from None
    raise PacketError(f"{what} needs a target (a Target or a name such as 'gfx942') because its "
                      f"encoding differs between GPU families")


def as_words(data: Any) -> Sequence[int]:
    """An indexable sequence of Python ints (little-endian dwords) for ``data``.

    Accepts lists/tuples of ints, array('I'), memoryviews, bytes-like objects (length a multiple
    of 4) and numpy uint32 arrays (viewed, not copied).
    """
    if isinstance(data, (list, tuple)):
        return data
    if isinstance(data, array.array):
        if data.itemsize == 4 and data.typecode in "IL":
            return data
        return memoryview(data).cast("B").cast("I")
    if isinstance(data, (bytes, bytearray)):
        if len(data) % 4:
            raise PacketError(f"{len(data)} bytes is not a whole number of dwords")
        return memoryview(data).cast("I")
    if isinstance(data, memoryview):
        if data.format == "I" and data.itemsize == 4 and data.ndim == 1:
            return data
        mv = data.cast("B") if data.format != "B" else data
        if mv.nbytes % 4:
            raise PacketError(f"{mv.nbytes} bytes is not a whole number of dwords")
        return mv.cast("I")
    dtype = getattr(data, "dtype", None)
    if dtype is not None:
        import numpy as np

        arr = np.ascontiguousarray(data)
        if arr.dtype != np.uint32:
            arr = arr.view(np.uint8).view(np.uint32) if arr.dtype.itemsize != 4 else \
                arr.view(np.uint32)
        return memoryview(arr.reshape(-1)).cast("B").cast("I")
    return [int(x) & 0xFFFFFFFF for x in data]


def format_lines(entries: Iterable[tuple[str, Sequence[int], str, bool]], *,
                 raw_limit: int = 4) -> str:
    """Render ring-dump lines: ``=> 0x000010  c0053c00 00000015 …  WAIT_REG_MEM …``.

    entries: (label, raw dwords, text, marked).
    """
    out = []
    rawcol = raw_limit * 9 + 4
    for label, raw, text, marked in entries:
        shown = " ".join(f"{int(x) & 0xFFFFFFFF:08x}" for x in raw[:raw_limit])
        if len(raw) > raw_limit:
            shown += f" +{len(raw) - raw_limit}"
        prefix = "=> " if marked else "   "
        out.append(f"{prefix}{label}  {shown:<{rawcol}} {text}".rstrip())
    return "\n".join(out)


DecodeFn = Callable[[Sequence[int], int, Any], tuple[Any, int]]


def iter_dwords(decode: DecodeFn, dwords: Any, target: Any, start: int = 0,
                end: int | None = None) -> Iterator[tuple[int, Any, int]]:
    """Yield (dword offset, packet, length in dwords) for consecutive packets of a dword
    stream (PM4 or SDMA ``decode``)."""
    d = as_words(dwords)
    stop = len(d) if end is None else end
    off = start
    while off < stop:
        p, n = decode(d, off, target)
        yield off, p, n
        off += n


def format_dword_stream(d: Sequence[int], target: Any, decode: DecodeFn,
                        skip: Callable[[Sequence[int], int, int], tuple[int, str]], *,
                        start_offset: int, mark: int | None, limit: int | None, raw_limit: int,
                        unit_bytes: int, unit_name: str) -> str:
    """The ring dump of a PM4 or SDMA dword window: one line per packet labelled with its ring
    offset (``start_offset`` + position, in units of ``unit_bytes``); ``mark`` (same units) is
    flagged with ``=>``. A dword that does not decode is shown as ``??? 0x…`` with the reason,
    and rendering goes on after the length ``skip(d, off, available)`` gives, with its note."""
    per_dw = 4 // unit_bytes
    entries = []
    off = 0
    total = len(d)
    marked = False
    while off < total and (limit is None or len(entries) < limit):
        at = start_offset + off * per_dw
        try:
            p, n = decode(d, off, target)
            text = p.render(target)
        except PacketDecodeError as e:
            n, note = skip(d, off, total - off)
            text = f"??? {d[off]:#010x}{note}: {e.reason}"
        is_mark = mark is not None and not marked and at <= mark < at + n * per_dw
        if is_mark:
            marked = True
            if mark != at:
                text += f"  [mark at +{mark - at} {unit_name}s inside this packet]"
        entries.append((f"{at:#08x}", list(d[off:off + n]), text, is_mark))
        off += n
    out = format_lines(entries, raw_limit=raw_limit)
    if mark is not None and not marked:
        where = "after" if mark >= start_offset + total * per_dw else "before"
        out += f"\n=> {mark:#08x}  (mark is {where} this window)"
    return out


# ---------------------------------------------------------------------------------------------
# C struct layouts (amd_signal_t, amd_queue_t): offsets as attributes

class StructField:
    """One member of a C struct: byte offset, size and struct-module format."""

    __slots__ = ("count", "fmt", "name", "offset", "size")

    def __init__(self, name: str, offset: int, size: int, fmt: str, count: int = 1) -> None:
        self.name, self.offset, self.size, self.fmt, self.count = name, offset, size, fmt, count

    def __repr__(self) -> str:
        return f"StructField({self.name!r}, offset={self.offset}, size={self.size})"


class StructLayout:
    """A C struct as a table: ``LAYOUT.member`` is the member's byte offset.

    ``sizeof`` is the struct size; ``field(name)`` gives a StructField; ``pack(**values)`` and
    ``unpack(buf)`` convert to and from bytes (members not given are 0).
    """

    def __init__(self, name: str, sizeof: int, members: Sequence[tuple[str, int, str] |
                                                                 tuple[str, int, str, int]]) -> None:
        import struct

        self.name = name
        self.sizeof = sizeof
        self.fields: dict[str, StructField] = {}
        end = 0
        for m in members:
            fname, off, fmt = m[0], m[1], m[2]
            count = m[3] if len(m) > 3 else 1
            size = struct.calcsize("<" + fmt) * count
            if off < end:
                raise ValueError(f"{name}.{fname} at {off} overlaps the previous member")
            if off % struct.calcsize("<" + fmt):
                raise ValueError(f"{name}.{fname} at {off} is misaligned")
            end = off + size
            sf = StructField(fname, off, size, fmt, count)
            self.fields[fname] = sf
            if hasattr(self, fname):
                raise ValueError(f"{name}: member {fname!r} clashes with a StructLayout attribute")
            setattr(self, fname, off)
        if end > sizeof:
            raise ValueError(f"{name}: members end at {end}, past sizeof {sizeof}")

    def field(self, name: str) -> StructField:
        try:
            return self.fields[name]
        except KeyError:
            raise KeyError(f"{self.name} has no member {name!r}; members: "
                           f"{', '.join(self.fields)}") from None

    def offset_of(self, name: str) -> int:
        return self.field(name).offset

    def pack(self, **values: Any) -> bytes:
        import struct

        buf = bytearray(self.sizeof)
        for name, v in values.items():
            f = self.field(name)
            if f.count == 1:
                struct.pack_into("<" + f.fmt, buf, f.offset, v)
            else:
                struct.pack_into(f"<{f.count}{f.fmt}", buf, f.offset, *v)
        return bytes(buf)

    def unpack(self, buf: bytes | bytearray | memoryview) -> dict[str, Any]:
        import struct

        if len(buf) < self.sizeof:
            raise PacketError(f"{self.name} needs {self.sizeof} bytes, got {len(buf)}")
        out: dict[str, Any] = {}
        for name, f in self.fields.items():
            vals = struct.unpack_from(f"<{f.count}{f.fmt}", buf, f.offset)
            out[name] = vals[0] if f.count == 1 else vals
        return out

    def __repr__(self) -> str:
        return f"StructLayout({self.name}, sizeof={self.sizeof}, {len(self.fields)} members)"


# ---------------------------------------------------------------------------------------------
# Shared enums

# Cache policy values of WRITE_DATA / WAIT_REG_MEM / ATOMIC_MEM / RELEASE_MEM (soc15d.h and
# nvd.h *_CACHE_POLICY__LRU/STREAM/NOA/BYPASS).
CACHE_POLICY_NAMES = {0: "lru", 1: "stream", 2: "noa", 3: "bypass"}

# TC_OP codes used by PM4 ATOMIC_MEM and SDMA ATOMIC (vega10_enum.h / soc21_enum.h TC_OP, the
# integer atomics; facts-pm4.md §3.11). Non-returning forms are the returning code + 0x40.
_TC_OPS = {
    0x07: "SWAP_RTN_32", 0x08: "CMPSWAP_RTN_32", 0x0F: "ADD_RTN_32", 0x10: "SUB_RTN_32",
    0x11: "SMIN_RTN_32", 0x12: "UMIN_RTN_32", 0x13: "SMAX_RTN_32", 0x14: "UMAX_RTN_32",
    0x15: "AND_RTN_32", 0x16: "OR_RTN_32", 0x17: "XOR_RTN_32", 0x18: "INC_RTN_32",
    0x19: "DEC_RTN_32", 0x27: "SWAP_RTN_64", 0x28: "CMPSWAP_RTN_64", 0x2F: "ADD_RTN_64",
    0x30: "SUB_RTN_64", 0x31: "SMIN_RTN_64", 0x32: "UMIN_RTN_64", 0x33: "SMAX_RTN_64",
    0x34: "UMAX_RTN_64", 0x35: "AND_RTN_64", 0x36: "OR_RTN_64", 0x37: "XOR_RTN_64",
    0x38: "INC_RTN_64", 0x39: "DEC_RTN_64",
}
TC_OP_NAMES: dict[int, str] = {**_TC_OPS,
                               **{k + 0x40: v.replace("_RTN", "") for k, v in _TC_OPS.items()}}
