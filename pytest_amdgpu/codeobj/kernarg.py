"""Kernarg segment contents built from a kernel's metadata.

Explicit arguments come from Python ints/floats, numpy scalars, bytes-like values and
Buffer-like objects (anything with an int `gpu_address`), each packed at the argument's
`.offset` with its `.size`. Hidden arguments are filled from the dispatch geometry
(facts-sdma-aql-codeobj.md §5.1: block counts = full work-groups, group sizes, remainders,
global offsets, grid dims, dynamic LDS size) and from `hidden=` for the pointers a runtime owns
(queue ptr, printf/hostcall buffers, heap, ...); anything not provided stays 0. Offsets are
always the metadata's, never recomputed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import UsageError
from .metadata import HIDDEN_VALUE_KINDS, KernelArg

MAX_WORKGROUP_SIZE = 1024


class LocalMemory:
    """Dynamic LDS for a `__local` pointer argument (value kind dynamic_shared_pointer): the
    kernarg receives the LDS offset of a block of `nbytes` allocated after the static LDS."""

    def __init__(self, nbytes: int) -> None:
        if not isinstance(nbytes, int | np.integer) or nbytes < 0:
            raise UsageError(f"LocalMemory size must be a non-negative int, got {nbytes!r}")
        self.nbytes = int(nbytes)

    def __repr__(self) -> str:
        return f"LocalMemory({self.nbytes})"


@dataclass(frozen=True)
class Geometry:
    """Dispatch geometry in the HSA convention: grid in work-items, block = work-group size."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    dims: int
    global_offset: tuple[int, int, int] = (0, 0, 0)

    @cached_property
    def workgroups(self) -> tuple[int, int, int]:
        """Work-groups per dimension, partial ones included."""
        return tuple(-(-g // b) for g, b in zip(self.grid, self.block))  # type: ignore[return-value]

    @cached_property
    def full_workgroups(self) -> tuple[int, int, int]:
        return tuple(g // b for g, b in zip(self.grid, self.block))  # type: ignore[return-value]

    @cached_property
    def remainders(self) -> tuple[int, int, int]:
        return tuple(g % b for g, b in zip(self.grid, self.block))  # type: ignore[return-value]

    @property
    def workgroup_size(self) -> int:
        return self.block[0] * self.block[1] * self.block[2]


def _dims(value, what: str) -> tuple[int, ...]:
    if type(value) is int:
        return (value,)
    if type(value) is tuple and 1 <= len(value) <= 3 and all(type(v) is int for v in value):
        return value
    if isinstance(value, int | np.integer):
        value = (int(value),)
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be an int or a tuple of 1-3 ints, got {value!r}") from None
    if not 1 <= len(out) <= 3:
        raise UsageError(f"{what} must have 1-3 dimensions, got {len(out)}")
    return out


def make_geometry(grid, block, global_offset=(0, 0, 0), *,
                  max_workgroup_size: int = MAX_WORKGROUP_SIZE) -> Geometry:
    """Validate grid/block (work-items / work-group size) and pad them to three dimensions."""
    g, b = _dims(grid, "grid"), _dims(block, "block")
    dims = max(len(g), len(b))
    g3 = g + (1,) * (3 - len(g))
    b3 = b + (1,) * (3 - len(b))
    for axis, (gv, bv) in enumerate(zip(g3, b3)):
        xyz = "xyz"[axis]
        if not 1 <= bv <= 0xFFFF:
            raise UsageError(f"block {xyz} = {bv}: a work-group dimension must be 1..65535")
        if not 1 <= gv <= 0xFFFFFFFF:
            raise UsageError(f"grid {xyz} = {gv}: the grid (in work-items) must be "
                             "1..2^32-1 per dimension")
    size = b3[0] * b3[1] * b3[2]
    if size > max_workgroup_size:
        raise UsageError(f"block {b3} has {size} work-items; this kernel allows at most "
                         f"{max_workgroup_size} (.max_flat_workgroup_size)")
    off = _dims(global_offset, "global_offset")
    off3 = off + (0,) * (3 - len(off))
    return Geometry(g3, b3, dims, off3)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Kernargs:
    """The built kernarg segment and the LDS the dispatch must allocate."""

    data: bytes
    dynamic_lds_size: int
    group_segment_size: int      # static + dynamic LDS bytes per work-group
    geometry: Geometry


_FLOAT_TYPES = {"half": 2, "float": 4, "double": 8}
_INT_TYPES = {
    "bool": 1, "char": 1, "uchar": 1, "signed char": 1, "unsigned char": 1,
    "short": 2, "ushort": 2, "unsigned short": 2, "int": 4, "uint": 4, "unsigned int": 4,
    "long": 8, "ulong": 8, "unsigned long": 8, "size_t": 8, "ptrdiff_t": 8, "intptr_t": 8,
    "uintptr_t": 8, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4,
    "uint32_t": 4, "int64_t": 8, "uint64_t": 8, "long long": 8, "unsigned long long": 8,
}
_FLOAT_FMT = {2: "<e", 4: "<f", 8: "<d"}
_UINT_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def _scalar_kind(arg: KernelArg) -> str:
    """'f' (floating), 'i' (integer) or '' (struct / unknown) from .type_name."""
    t = (arg.type_name or "").replace("const ", "").replace("volatile ", "").strip()
    base = t.rstrip("0123456789")
    if base in _FLOAT_TYPES:
        return "f"
    if base in _INT_TYPES:
        return "i"
    return ""


def _int_bytes(arg: KernelArg, value: int, size: int) -> bytes:
    lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size)) - 1
    if not lo <= value <= hi:
        raise UsageError(f"kernel argument {arg.label}: {value} does not fit {size} bytes")
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _by_value(arg: KernelArg, value) -> bytes:
    size, kind = arg.size, _scalar_kind(arg)
    if hasattr(value, "gpu_address"):
        raise UsageError(f"kernel argument {arg.label} is passed by value ({size} bytes); got a "
                         f"buffer ({type(value).__name__}); pass a number")
    if isinstance(value, bool | np.bool_):
        value = int(value)
    if isinstance(value, np.generic):
        if value.dtype.itemsize != size:
            raise UsageError(f"kernel argument {arg.label} is {size} bytes; got numpy "
                             f"{value.dtype} of {value.dtype.itemsize} bytes")
        if (kind == "f" and value.dtype.kind != "f") or (kind == "i" and value.dtype.kind not in "iub"):
            raise UsageError(f"kernel argument {arg.label}: numpy {value.dtype} does not match "
                             f"the parameter type {arg.type_name}")
        return value.tobytes()
    if isinstance(value, int):
        if kind == "f" and size in _FLOAT_FMT:
            return struct.pack(_FLOAT_FMT[size], float(value))
        if size > 8 or kind not in ("i", "") or size not in (1, 2, 4, 8):
            raise UsageError(f"kernel argument {arg.label} ({size} bytes) cannot be built from "
                             f"the int {value}; pass bytes or a numpy value of that size")
        return _int_bytes(arg, value, size)
    if isinstance(value, float):
        if kind == "i":
            raise UsageError(f"kernel argument {arg.label} is an integer; got the float "
                             f"{value!r} (convert it explicitly)")
        if (kind == "" and size not in _FLOAT_FMT) or (kind == "f" and size not in _FLOAT_FMT):
            raise UsageError(f"kernel argument {arg.label} ({size} bytes) cannot be built from "
                             f"the float {value!r}")
        return struct.pack(_FLOAT_FMT[size], value)
    if isinstance(value, np.ndarray):
        if value.nbytes != size:
            raise UsageError(f"kernel argument {arg.label} is {size} bytes by value; got a "
                             f"numpy array of {value.nbytes} bytes")
        return np.ascontiguousarray(value).tobytes()
    try:
        raw = bytes(memoryview(value).cast("B"))
    except TypeError:
        raise UsageError(f"kernel argument {arg.label}: cannot pass a "
                         f"{type(value).__name__} by value") from None
    if len(raw) != size:
        raise UsageError(f"kernel argument {arg.label} is {size} bytes by value; got "
                         f"{len(raw)} bytes")
    return raw


def _address(arg: KernelArg, value) -> int:
    if value is None:
        return 0
    addr = getattr(value, "gpu_address", value)
    if isinstance(addr, np.integer):
        addr = int(addr)
    if isinstance(addr, bool) or not isinstance(addr, int):
        hint = " (copy host data into a device Buffer first)" if isinstance(
            value, np.ndarray) else ""
        raise UsageError(f"kernel argument {arg.label} is a {arg.value_kind} "
                         f"({arg.address_space or 'pointer'}); got {type(value).__name__}: "
                         f"pass a Buffer (anything with an int .gpu_address) or an address"
                         f"{hint}")
    if not 0 <= addr < (1 << 64):
        raise UsageError(f"kernel argument {arg.label}: address {addr:#x} is out of range")
    return addr


def hidden_values(geometry: Geometry, dynamic_lds_size: int = 0,
                  hidden: Mapping[str, int] | None = None) -> dict[str, int]:
    """Values for every hidden value kind this module knows, keyed by value kind."""
    g = geometry
    full, rem, off = g.full_workgroups, g.remainders, g.global_offset
    values = {
        "hidden_block_count_x": full[0],
        "hidden_block_count_y": full[1],
        "hidden_block_count_z": full[2],
        "hidden_group_size_x": g.block[0],
        "hidden_group_size_y": g.block[1],
        "hidden_group_size_z": g.block[2],
        "hidden_remainder_x": rem[0],
        "hidden_remainder_y": rem[1],
        "hidden_remainder_z": rem[2],
        "hidden_global_offset_x": off[0],
        "hidden_global_offset_y": off[1],
        "hidden_global_offset_z": off[2],
        "hidden_grid_dims": g.dims,
        "hidden_dynamic_lds_size": dynamic_lds_size,
    }
    for key, value in (hidden or {}).items():
        kind = key if key.startswith("hidden_") else "hidden_" + key
        if kind not in HIDDEN_VALUE_KINDS or kind == "hidden_none":
            known = sorted(k.removeprefix("hidden_") for k in HIDDEN_VALUE_KINDS
                           if k != "hidden_none")
            raise UsageError(f"hidden={{{key!r}: ...}}: {kind} is not a hidden argument value "
                             f"kind (AMDGPUUsage); known: {', '.join(known)}")
        values[kind] = int(value)
    return values


def build_kernargs(kernel, args: Sequence | Mapping = (), *, grid, block,
                   global_offset=(0, 0, 0), hidden: Mapping[str, int] | None = None,
                   static_lds: int | None = None) -> Kernargs:
    """Kernarg bytes for `kernel` (a KernelInfo) and the dispatch geometry.

    `args` holds the explicit arguments, in order or by name. `hidden` supplies runtime values
    for hidden arguments by value kind, with or without the "hidden_" prefix (e.g.
    {"queue_ptr": q.address}).
    """
    md = getattr(kernel, "metadata", None)
    max_wg = md.max_flat_workgroup_size if md is not None and md.max_flat_workgroup_size \
        else MAX_WORKGROUP_SIZE
    geometry = make_geometry(grid, block, global_offset, max_workgroup_size=max_wg)
    return pack_kernargs(kernel, args, geometry, hidden=hidden, static_lds=static_lds)


def pack_kernargs(kernel, args: Sequence | Mapping, geometry: Geometry, *,
                  hidden: Mapping[str, int] | None = None,
                  static_lds: int | None = None) -> Kernargs:
    """`build_kernargs` for an already validated Geometry (the dispatch fast path)."""
    md = getattr(kernel, "metadata", None)
    label = getattr(kernel, "name", "kernel")
    explicit = md.explicit_args if md is not None else ()
    values = _match_args(label, list(explicit), args, md is None)

    static = kernel.group_segment_size if static_lds is None else static_lds
    size = max(kernel.kernarg_size, md.args_end if md is not None else 0)
    buf = bytearray(size)
    lds_end = _pack_explicit(explicit, values, buf, static)
    dynamic = lds_end - static
    hidden_args = md.hidden_args if md is not None else ()
    if hidden_args:
        _fill_hidden(hidden_args, buf, hidden_values(geometry, dynamic, hidden))
    return Kernargs(bytes(buf), dynamic, lds_end, geometry)


def _pack_explicit(explicit: Sequence[KernelArg], values: Sequence, buf: bytearray,
                   static: int) -> int:
    """Write the explicit arguments into `buf`; returns the end of the LDS they allocate."""
    lds_end = static
    for arg, value in zip(explicit, values):
        if arg.value_kind == "by_value":
            raw = _by_value(arg, value)
        elif arg.value_kind == "dynamic_shared_pointer":
            if not isinstance(value, LocalMemory):
                raise UsageError(f"kernel argument {arg.label} is a __local pointer; pass "
                                 f"LocalMemory(nbytes) (got {type(value).__name__})")
            align = max(arg.pointee_align or 16, 4)
            lds_offset = -(-lds_end // align) * align
            lds_end = lds_offset + value.nbytes
            raw = _int_bytes(arg, lds_offset, arg.size)
        else:
            raw = _int_bytes(arg, _address(arg, value), arg.size)
        buf[arg.offset:arg.offset + arg.size] = raw
    return lds_end


def _fill_hidden(hidden_args: Sequence[KernelArg], buf: bytearray, fill: Mapping[str, int]
                 ) -> None:
    """Write the hidden arguments `fill` has a value for (by value kind) into `buf`."""
    for arg in hidden_args:
        value = fill.get(arg.value_kind)
        if value is None:
            continue
        fmt = _UINT_FMT.get(arg.size)
        if fmt is not None and 0 <= value < 1 << (8 * arg.size):
            struct.pack_into(fmt, buf, arg.offset, value)
        else:
            buf[arg.offset:arg.offset + arg.size] = _int_bytes(arg, value, arg.size)


class KernargTemplate:
    """The kernarg segment of one kernel and Geometry with the hidden arguments written once.

    Repeated dispatches of a kernel over one geometry differ only in their explicit arguments:
    `pack` copies the template and writes just those. Bytes, LDS sizes and errors are the
    ones `pack_kernargs` gives for the same inputs, raised in the same order (an error of the
    hidden values is kept and raised after the explicit arguments were checked). The hidden
    arguments are written again, after the explicit ones, when dynamic LDS changes their
    values or when the metadata lets explicit and hidden arguments overlap.
    """

    def __init__(self, kernel, geometry: Geometry, *, hidden: Mapping[str, int] | None = None,
                 static_lds: int | None = None) -> None:
        md = getattr(kernel, "metadata", None)
        self.label = getattr(kernel, "name", "kernel")
        self.no_metadata = md is None
        self.explicit = list(md.explicit_args) if md is not None else []
        self.hidden_args = md.hidden_args if md is not None else ()
        self.geometry = geometry
        self.hidden = dict(hidden) if hidden else None
        self.static = kernel.group_segment_size if static_lds is None else static_lds
        size = max(kernel.kernarg_size, md.args_end if md is not None else 0)
        explicit_bytes: set[int] = set()
        for arg in self.explicit:
            explicit_bytes.update(range(arg.offset, arg.offset + arg.size))
        self.overlap = any(explicit_bytes.intersection(range(a.offset, a.offset + a.size))
                           for a in self.hidden_args)
        self.error: UsageError | None = None
        buf = bytearray(size)
        if self.hidden_args:
            try:
                _fill_hidden(self.hidden_args, buf, hidden_values(geometry, 0, hidden))
            except UsageError as exc:
                self.error = exc
        self.image = bytes(buf)
        self.direct = not self.explicit and self.error is None   # nothing to write per call

    def pack_parts(self, args: Sequence | Mapping) -> tuple[bytes, int, int]:
        """(kernarg bytes, dynamic LDS bytes, static + dynamic LDS bytes) for `args`."""
        if self.direct and (type(args) is list or type(args) is tuple) and not args \
                and not self.no_metadata:
            return self.image, 0, self.static
        values = _match_args(self.label, self.explicit, args, self.no_metadata)
        buf = bytearray(self.image)
        lds_end = _pack_explicit(self.explicit, values, buf, self.static)
        if self.error is not None:
            raise self.error
        dynamic = lds_end - self.static
        if self.hidden_args and (dynamic or self.overlap):
            _fill_hidden(self.hidden_args, buf,
                         hidden_values(self.geometry, dynamic, self.hidden))
        return bytes(buf), dynamic, lds_end

    def pack(self, args: Sequence | Mapping) -> Kernargs:
        """The Kernargs `pack_kernargs` builds for `args`."""
        data, dynamic, lds = self.pack_parts(args)
        return Kernargs(data, dynamic, lds, self.geometry)


def _match_args(label: str, explicit: list[KernelArg], args, no_metadata: bool) -> list:
    if no_metadata:
        if args:
            raise UsageError(f"kernel {label!r} has no metadata note, so its arguments cannot "
                             "be laid out; pass raw kernarg bytes instead")
        return []
    if isinstance(args, Mapping):
        names = {a.name: a for a in explicit if a.name}
        unknown = [k for k in args if k not in names]
        if unknown:
            raise UsageError(f"kernel {label!r} has no argument named {unknown[0]!r}; its named "
                             f"arguments: {', '.join(names) or 'none (metadata has no .name)'}")
        missing = [a.label for a in explicit if a.name not in args]
        if missing:
            raise UsageError(f"kernel {label!r}: missing argument(s) {', '.join(missing)}")
        return [args[a.name] for a in explicit]
    values = list(args)
    if len(values) != len(explicit):
        sig = ", ".join(a.label for a in explicit) or "no arguments"
        raise UsageError(f"kernel {label!r} takes {len(explicit)} argument(s) ({sig}); got "
                         f"{len(values)}")
    return values
