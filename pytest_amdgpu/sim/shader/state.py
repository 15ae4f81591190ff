"""Register state of a batch of waves executed in lockstep.

A `Batch` holds W waves of L lanes that sit at the same PC: scalar registers as a (W, 128)
uint32 matrix indexed by the 7/8-bit scalar operand encoding (so VCC, EXEC, M0 are columns
106/107, 126/127, 124 or 125), vector registers as (NV, W, L) uint32, AGPRs likewise, SCC as a
(W,) bool vector.  The EXEC lane mask is kept unpacked as a (W, L) bool matrix next to the
packed bits, refreshed whenever an instruction writes EXEC.
"""

from __future__ import annotations

import numpy as np

U32 = np.uint32
U64 = np.uint64


def unpack_mask(words: np.ndarray, lanes: int) -> np.ndarray:
    """(W, k) uint32 lane-mask words -> (W, lanes) bool."""
    w = np.ascontiguousarray(words, dtype=U32)
    bits = np.unpackbits(w.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :lanes].view(bool)


def pack_mask(mask: np.ndarray, lanes: int) -> np.ndarray:
    """(W, lanes) bool -> (W, lanes // 32) uint32 lane-mask words."""
    m = np.ascontiguousarray(mask, dtype=bool)
    return np.packbits(m, axis=1, bitorder="little").view(U32)


class Batch:
    """W waves at one PC, executed together (see module docstring)."""

    __slots__ = (
        "L",
        "W",
        "a",
        "barrier",
        "dead",
        "em",
        "exec_full",
        "fscr",
        "gpr",
        "lane",
        "lds_base",
        "mcache",
        "mode",
        "nw",
        "pc",
        "ran",
        "s",
        "scc",
        "trapsts",
        "v",
        "wave",
        "wg",
        "wg_slot",
    )

    def __init__(self, W: int, L: int, nv: int, na: int, *, exec_cols: int = 126) -> None:
        self.W = W
        self.L = L
        self.nw = L // 32                       # mask words per wave (1 or 2)
        self.s = np.zeros((W, 128), dtype=U32)
        self.v = np.zeros((nv, W, L), dtype=U32)
        self.a = np.zeros((na, W, L), dtype=U32) if na else np.zeros((0, W, L), dtype=U32)
        self.scc = np.zeros(W, dtype=bool)
        self.em = np.zeros((W, L), dtype=bool)
        self.exec_full = False
        self.mcache: dict[int, np.ndarray] = {}
        self.pc = 0
        self.wave = np.arange(W)                # dispatch-chunk wave index
        self.wg = np.zeros(W, dtype=np.int64)   # workgroup index within the chunk
        self.wg_slot = np.zeros((W, 1), dtype=np.int64)  # byte base of the wave's LDS block
        self.lane = np.arange(L, dtype=U32)[None, :]
        self.fscr = np.zeros(W, dtype=U64)      # architected flat-scratch base per wave
        self.mode = np.zeros(W, dtype=U32)
        self.trapsts = np.zeros(W, dtype=U32)
        self.barrier = False
        self.dead = False
        self.ran = 0
        self.lds_base = None
        self.gpr = None                         # GFX9 VGPR indexing: (M0 offset, mode) or None

    # -- EXEC ---------------------------------------------------------------------------------
    def exec_changed(self) -> None:
        """Recompute the unpacked EXEC mask after a write to EXEC."""
        self.em = unpack_mask(self.s[:, 126:126 + self.nw], self.L)
        self.exec_full = bool(self.em.all())
        self.mcache.clear()

    def set_exec(self, mask: np.ndarray) -> None:
        """Set EXEC from a (W, L) bool mask."""
        self.s[:, 126:126 + self.nw] = pack_mask(mask, self.L)
        if self.nw == 1:
            self.s[:, 127] = 0
        self.em = np.ascontiguousarray(mask, dtype=bool)
        self.exec_full = bool(self.em.all())
        self.mcache.clear()

    # -- lane masks in SGPRs ------------------------------------------------------------------
    def mask_of(self, idx: int) -> np.ndarray:
        """The (W, L) lane mask held in SGPR(s) idx (VCC, an SGPR pair, EXEC)."""
        if idx == 126:
            return self.em
        m = self.mcache.get(idx)
        if m is None:
            m = unpack_mask(self.s[:, idx:idx + self.nw], self.L)
            self.mcache[idx] = m
        return m

    def write_mask(self, idx: int, mask: np.ndarray) -> None:
        """Write a (W, L) lane mask into SGPR(s) idx (inactive lanes already cleared)."""
        self.s[:, idx:idx + self.nw] = pack_mask(mask, self.L)
        if idx == 126:
            self.em = np.ascontiguousarray(mask, dtype=bool)
            self.exec_full = bool(self.em.all())
            self.mcache.clear()
        else:
            self.mcache.clear()
            self.mcache[idx] = mask

    def scalar_written(self) -> None:
        """A scalar write that may alias a cached lane mask."""
        if self.mcache:
            self.mcache.clear()

    # -- batch surgery -----------------------------------------------------------------------
    def take(self, rows: np.ndarray) -> Batch:
        """A new batch holding the waves at `rows` (copies)."""
        nb = Batch.__new__(Batch)
        nb.W = int(rows.size)
        nb.L = self.L
        nb.nw = self.nw
        nb.s = np.take(self.s, rows, axis=0)
        nb.v = np.take(self.v, rows, axis=1)
        nb.a = np.take(self.a, rows, axis=1)
        nb.scc = self.scc[rows]
        nb.em = np.take(self.em, rows, axis=0)
        nb.exec_full = bool(nb.em.all())
        nb.mcache = {}
        nb.pc = self.pc
        nb.wave = self.wave[rows]
        nb.wg = self.wg[rows]
        nb.wg_slot = self.wg_slot[rows]
        nb.lane = self.lane
        nb.fscr = self.fscr[rows]
        nb.mode = self.mode[rows]
        nb.trapsts = self.trapsts[rows]
        nb.barrier = self.barrier
        nb.dead = False
        nb.ran = 0
        nb.lds_base = self.lds_base
        nb.gpr = self.gpr
        return nb

    def copy(self) -> Batch:
        """An independent copy (used to re-launch a cached initial state)."""
        nb = Batch.__new__(Batch)
        for name in Batch.__slots__:
            val = getattr(self, name)
            if isinstance(val, np.ndarray) and name not in ("lane", "em", "wg", "wg_slot", "wave"):
                val = val.copy()
            setattr(nb, name, val)
        nb.mcache = {}
        return nb

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """Merge batches at the same PC into one (waves keep the order of `batches`)."""
        first = batches[0]
        nb = Batch.__new__(Batch)
        nb.L = first.L
        nb.nw = first.nw
        nb.wave = np.concatenate([b.wave for b in batches])
        nb.W = int(nb.wave.size)
        nb.s = np.concatenate([b.s for b in batches])
        nb.v = np.concatenate([b.v for b in batches], axis=1)
        nb.a = np.concatenate([b.a for b in batches], axis=1)
        nb.scc = np.concatenate([b.scc for b in batches])
        nb.em = np.concatenate([b.em for b in batches])
        nb.exec_full = all(b.exec_full for b in batches)
        nb.mcache = {}
        nb.pc = first.pc
        nb.wg = np.concatenate([b.wg for b in batches])
        nb.wg_slot = np.concatenate([b.wg_slot for b in batches])
        nb.lane = first.lane
        nb.fscr = np.concatenate([b.fscr for b in batches])
        nb.mode = np.concatenate([b.mode for b in batches])
        nb.trapsts = np.concatenate([b.trapsts for b in batches])
        nb.barrier = first.barrier
        nb.dead = False
        nb.ran = 0
        nb.lds_base = first.lds_base
        nb.gpr = first.gpr
        return nb
