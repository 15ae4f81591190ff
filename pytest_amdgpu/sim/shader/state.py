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


# per-wave arrays of a Batch and their wave axis (everything else is shared by its waves)
_PER_WAVE = (("s", 0), ("v", 1), ("a", 1), ("scc", 0), ("em", 0), ("wave", 0), ("wg", 0), ("wg_slot", 0),
             ("fscr", 0), ("mode", 0), ("trapsts", 0))


class Batch:
    """W waves at one PC, executed together (see module docstring)."""

    __slots__ = ("L", "W", "a", "em", "exec_full", "fscr", "gpr", "lane", "mcache", "mode", "nw", "pc", "s",
                 "scc", "trapsts", "v", "wave", "wg", "wg_slot")

    def __init__(self, W: int, L: int, nv: int, na: int) -> None:
        self.W = W
        self.L = L
        self.nw = L // 32                       # mask words per wave (1 or 2)
        self.s = np.zeros((W, 128), dtype=U32)
        self.v = np.zeros((nv, W, L), dtype=U32)
        self.a = np.zeros((na, W, L), dtype=U32)
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
    def _like(self, W: int) -> Batch:
        """A batch of W waves sharing this one's PC, wave size and VGPR-indexing state."""
        nb = Batch.__new__(Batch)
        nb.W, nb.L, nb.nw = W, self.L, self.nw
        nb.pc, nb.lane, nb.gpr = self.pc, self.lane, self.gpr
        nb.mcache = {}
        return nb

    def take(self, rows: np.ndarray) -> Batch:
        """A new batch holding the waves at `rows` (copies)."""
        nb = self._like(int(rows.size))
        for name, axis in _PER_WAVE:
            setattr(nb, name, np.take(getattr(self, name), rows, axis=axis))
        nb.exec_full = bool(nb.em.all())
        return nb

    def copy(self) -> Batch:
        """An independent copy (used to re-launch a cached initial state)."""
        return self._clone(share=False)

    # arrays a launched batch shares with its cached initial state: the core replaces them
    # (take / concat) and never writes them in place
    _SHARED = ("wave", "wg", "wg_slot", "fscr")

    def template(self) -> Batch:
        """A copy to keep as a cached initial state; its shared arrays are made read-only."""
        nb = self.copy()
        for name in self._SHARED:
            getattr(nb, name).flags.writeable = False
        return nb

    def launch(self) -> Batch:
        """A batch to run from this cached initial state (see `template`): the registers the
        waves may write are copied, the wave-constant index arrays are shared."""
        return self._clone(share=True)

    def _clone(self, share: bool) -> Batch:
        nb = Batch.__new__(Batch)
        nb.W, nb.L, nb.nw = self.W, self.L, self.nw
        nb.pc, nb.lane, nb.gpr = self.pc, self.lane, self.gpr
        nb.mcache = {}
        nb.s = self.s.copy()
        nb.v = self.v.copy()
        nb.a = self.a.copy()
        nb.scc = self.scc.copy()
        nb.em = self.em.copy()
        if share:
            nb.wave, nb.wg, nb.wg_slot, nb.fscr = self.wave, self.wg, self.wg_slot, self.fscr
        else:
            nb.wave, nb.wg = self.wave.copy(), self.wg.copy()
            nb.wg_slot, nb.fscr = self.wg_slot.copy(), self.fscr.copy()
        nb.mode = self.mode.copy()
        nb.trapsts = self.trapsts.copy()
        nb.exec_full = self.exec_full
        return nb

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """Merge batches at the same PC into one (waves keep the order of `batches`)."""
        nb = batches[0]._like(sum(b.W for b in batches))
        for name, axis in _PER_WAVE:
            setattr(nb, name, np.concatenate([getattr(b, name) for b in batches], axis=axis))
        nb.exec_full = all(b.exec_full for b in batches)
        return nb
