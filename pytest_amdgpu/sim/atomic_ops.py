"""The arithmetic of GPU atomic operations: what an atomic stores over the old value.

One definition for every atomic the simulator runs: shader lane atomics (global, flat, buffer,
DS), the CP's ATOMIC_MEM and SDMA ATOMIC. Element types are unsigned (uint32 / uint64); signed
and float operations reinterpret the bits, integer results wrap at the width.
"""

from __future__ import annotations

import operator

import numpy as np

U32, U64 = np.uint32, np.uint64

SIGNED = {U32: np.int32, U64: np.int64}
FLOAT = {U32: np.float32, U64: np.float64}
_BY_SIZE = {4: U32, 8: U64}


def combine(op: str, old, src, cmp, dt):
    """The values atomic `op` stores over `old` (arrays of the unsigned element type `dt`;
    `cmp` is the compare value of cmpswap, DATA1 of DS_MSKOR, else unused)."""
    if op == "add":
        return (old + src).astype(dt)
    if op == "sub":
        return (old - src).astype(dt)
    if op == "rsub":
        return (src - old).astype(dt)
    if op == "swap":
        return src
    if op == "cmpswap":
        return np.where(old == cmp, src, old).astype(dt)
    if op == "mskor":                                 # DS_MSKOR: cmp carries DATA1, the OR value
        return ((old & ~src) | cmp).astype(dt)
    if op == "umin":
        return np.minimum(old, src)
    if op == "umax":
        return np.maximum(old, src)
    if op in ("smin", "min"):
        it = SIGNED[dt]
        return np.minimum(old.view(it), src.view(it)).view(dt)
    if op in ("smax", "max"):
        it = SIGNED[dt]
        return np.maximum(old.view(it), src.view(it)).view(dt)
    if op == "and":
        return old & src
    if op == "or":
        return old | src
    if op == "xor":
        return old ^ src
    if op == "inc":
        return np.where(old >= src, dt(0), old + dt(1)).astype(dt)
    if op == "dec":
        return np.where((old == 0) | (old > src), src, old - dt(1)).astype(dt)
    if op in ("fadd", "fmin", "fmax"):
        ft = FLOAT[dt]
        a, b = old.view(ft), src.view(ft)
        with np.errstate(all="ignore"):         # overflow to inf, NaN: as the hardware
            r = a + b if op == "fadd" else (np.fmin(a, b) if op == "fmin" else np.fmax(a, b))
        return np.asarray(r, ft).view(dt)
    if op == "csub":      # GFX11 clamped subtract
        return np.where(old >= src, old - src, dt(0)).astype(dt)
    if op in ("pk_fadd_f16", "pk_fadd_bf16"):      # two 16-bit floats per dword, each rounded
        return _pk_add16(old, src, op == "pk_fadd_bf16")
    raise ValueError(f"unknown atomic op {op!r}")


def _pk_add16(old, src, bf16: bool):
    """Packed f16 / bf16 add of the two halves of 32-bit words (round to nearest even)."""
    old = np.asarray(old, dtype=U32)
    src = np.asarray(src, dtype=U32)
    out = np.zeros(np.broadcast_shapes(old.shape, src.shape), dtype=U32)
    for sh in (0, 16):
        a = (old >> U32(sh)) & U32(0xFFFF)
        b = (src >> U32(sh)) & U32(0xFFFF)
        with np.errstate(all="ignore"):
            if bf16:
                s = ((a << U32(16)).view(np.float32).astype(np.float64)
                     + (b << U32(16)).view(np.float32).astype(np.float64)).astype(np.float32).view(U32)
                nan = (s & U32(0x7FFFFFFF)) > U32(0x7F800000)
                r = (s + U32(0x7FFF) + ((s >> U32(16)) & U32(1))) >> U32(16)       # RNE to bf16
                r = np.where(nan, (s >> U32(16)) | U32(0x40), r)
            else:
                r = (a.astype(np.uint16).view(np.float16) + b.astype(np.uint16).view(np.float16)).view(np.uint16)
        out |= (np.asarray(r).astype(U32) & U32(0xFFFF)) << U32(sh)
    return out



# ops whose scalar result Python ints give directly (wrapped to the width), without the ~10 us
# of numpy set-up per call; every other op goes through `combine`
_INT_OPS = {"add": operator.add, "sub": operator.sub, "and": operator.and_, "or": operator.or_,
            "xor": operator.xor, "swap": lambda old, src: src, "umin": min, "umax": max}


def combine_scalar(op: str, old: int, src: int, cmp: int, size: int) -> int:
    """`combine` for one `size`-byte (4 or 8) location (unsigned values): the new value."""
    fn = _INT_OPS.get(op)
    if fn is not None:
        return fn(old, src) & ((1 << (8 * size)) - 1)
    if op == "cmpswap":
        return src if old == cmp else old
    dt = _BY_SIZE[size]
    one = (np.array([v], dtype=dt) for v in (old, src, cmp))
    return int(np.asarray(combine(op, *one, dt), dtype=dt)[0])
