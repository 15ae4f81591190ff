"""Atomic read-modify-write of many lanes at once, with the per-lane order the hardware gives.

Lanes are applied in order (wave by wave, lane by lane), so when several lanes hit one address
each sees the value the previous one left.  `apply(mem, idx, op, src, cmp)` does this on a numpy
view `mem` (uint32 / uint64 elements) for element indices `idx`, returning the old value each
lane saw.  Sums and extrema use segmented scans over the lanes sorted by address; other
operations run one round per repetition of the busiest address.
"""

from __future__ import annotations

import numpy as np

U32, U64 = np.uint32, np.uint64

_SIGNED = {U32: np.int32, U64: np.int64}
_FLOAT = {U32: np.float32, U64: np.float64}


def _combine(op: str, old, src, cmp, dt):
    """New memory value for one lane given the old value."""
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
    if op == "smin":
        it = _SIGNED[dt]
        return np.minimum(old.view(it), src.view(it)).view(dt)
    if op == "smax":
        it = _SIGNED[dt]
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
        ft = _FLOAT[dt]
        a, b = old.view(ft), src.view(ft)
        r = a + b if op == "fadd" else (np.fmin(a, b) if op == "fmin" else np.fmax(a, b))
        return np.asarray(r, ft).view(dt)
    if op == "csub":      # GFX11 clamped subtract
        return np.where(old >= src, old - src, dt(0)).astype(dt)
    if op in ("pk_fadd_f16", "pk_fadd_bf16"):      # two 16-bit floats per dword, each rounded
        return _pk_add16(old, src, op == "pk_fadd_bf16")
    raise ValueError(op)


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


def apply(mem: np.ndarray, idx: np.ndarray, op: str, src: np.ndarray, cmp: np.ndarray | None = None,
          want_old: bool = True) -> np.ndarray | None:
    """Apply atomics in lane order; `mem` is modified in place.  Returns old values (or None)."""
    dt = mem.dtype.type
    n = idx.size
    if n == 0:
        return np.zeros(0, dtype=dt) if want_old else None
    src = np.asarray(src, dtype=dt).reshape(n)
    if cmp is not None:
        cmp = np.asarray(cmp, dtype=dt).reshape(n)
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sidx[1:] != sidx[:-1]
    if first.all():                       # no two lanes share an address
        old = mem[idx].copy()
        mem[idx] = _combine(op, old, src, cmp, dt)
        return old if want_old else None
    starts = np.flatnonzero(first)
    seg = np.cumsum(first) - 1
    ssrc = src[order]
    uniq = sidx[starts]
    base = mem[uniq].copy()
    if op in ("add", "sub"):
        s = ssrc if op == "add" else (~ssrc + dt(1)).astype(dt)
        csum = np.cumsum(s, dtype=dt)
        seg_before = np.concatenate([[dt(0)], csum[starts[1:] - 1]]).astype(dt)
        excl = (csum - s - seg_before[seg]).astype(dt)
        old_sorted = (base[seg] + excl).astype(dt)
        total = (csum[np.r_[starts[1:] - 1, n - 1]] - seg_before).astype(dt)
        mem[uniq] = (base + total).astype(dt)
    elif op in ("umin", "umax", "smin", "smax", "and", "or", "xor"):
        ufunc = {"umin": np.minimum, "umax": np.maximum, "smin": np.minimum, "smax": np.maximum,
                 "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
        signed = op in ("smin", "smax")
        vals = ssrc.view(_SIGNED[dt]) if signed else ssrc
        red = ufunc.reduceat(vals, starts)
        b0 = base.view(_SIGNED[dt]) if signed else base
        final = ufunc(b0, red)
        mem[uniq] = final.view(dt) if signed else final
        if not want_old:
            return None
        old_sorted = _segmented_exclusive(ufunc, vals, b0, seg, starts, first)
        if signed:
            old_sorted = old_sorted.view(dt)
    else:
        old_sorted = np.empty(n, dtype=dt)
        pos = np.arange(n) - starts[seg]           # rank of the lane within its address
        cur = base.copy()
        scmp = cmp[order] if cmp is not None else None
        for r in range(int(pos.max()) + 1):
            sel = np.flatnonzero(pos == r)
            sg = seg[sel]
            old_sorted[sel] = cur[sg]
            cur[sg] = _combine(op, cur[sg], ssrc[sel], scmp[sel] if scmp is not None else None, dt)
        mem[uniq] = cur
    if not want_old:
        return None
    old = np.empty(n, dtype=dt)
    old[order] = old_sorted
    return old


def _segmented_exclusive(ufunc, vals, base, seg, starts, first):
    """Exclusive scan of `ufunc` within segments, seeded with each segment's memory value."""
    n = vals.size
    out = np.empty_like(vals)
    pos = np.arange(n) - starts[seg]
    acc = base.copy()
    for r in range(int(pos.max()) + 1):
        sel = np.flatnonzero(pos == r)
        sg = seg[sel]
        out[sel] = acc[sg]
        acc[sg] = ufunc(acc[sg], vals[sel])
    return out
