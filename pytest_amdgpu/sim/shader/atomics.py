"""Atomic read-modify-write of many lanes at once, with the per-lane order the hardware gives.

Lanes are applied in order (wave by wave, lane by lane), so when several lanes hit one address
each sees the value the previous one left.  `apply(mem, idx, op, src, cmp)` does this on a numpy
view `mem` (uint32 / uint64 elements) for element indices `idx`, returning the old value each
lane saw.  Sums and extrema use segmented scans over the lanes sorted by address; other
operations run one round per repetition of the busiest address.
"""

from __future__ import annotations

import numpy as np

from ..atomic_ops import SIGNED as _SIGNED
from ..atomic_ops import combine as _combine


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
