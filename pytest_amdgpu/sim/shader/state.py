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

    __slots__ = ("L", "W", "a", "em", "exec_full", "fscr", "gpr", "lane", "mcache", "mode", "nw", "pc",
                 "regfile", "s", "scc", "trapsts", "v", "wave", "wg", "wg_slot")

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
        self.regfile: memoryview | None = None  # bytes that s, v, a, scc view, when packed

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
        nb.regfile = None
        return nb

    def take(self, rows: np.ndarray) -> Batch:
        """A new batch holding the waves at `rows` (copies)."""
        nb = self._like(int(rows.size))
        for name, axis in _PER_WAVE:
            setattr(nb, name, np.take(getattr(self, name), rows, axis=axis))
        nb.exec_full = bool(nb.em.all())
        return nb

    def copy(self) -> Batch:
        """An independent copy."""
        nb = self._like(self.W)
        for name, _axis in _PER_WAVE:
            setattr(nb, name, getattr(self, name).copy())
        nb.exec_full = self.exec_full
        return nb

    # A cached initial state (`template`) keeps the registers the waves write in place (SGPRs,
    # VGPRs, AGPRs, SCC) packed in one read-only byte buffer, `regfile`; a batch launched from
    # it gets a copy of those bytes and shares the other arrays, which instructions replace
    # (EXEC writes, s_setreg, take / concat) and never write in place.
    def _files(self, buf: np.ndarray) -> None:
        """Make s, v, a, scc views of the packed register file `buf` (see `template`)."""
        W, L = self.W, self.L
        o1 = 512 * W
        o2 = o1 + 4 * W * L * self.v.shape[0]
        o3 = o2 + 4 * W * L * self.a.shape[0]
        self.s = buf[:o1].view(U32).reshape(W, 128)
        self.v = buf[o1:o2].view(U32).reshape(-1, W, L)
        self.a = buf[o2:o3].view(U32).reshape(-1, W, L)
        self.scc = buf[o3:o3 + W].view(bool)
        self.regfile = memoryview(buf)

    def template(self) -> Batch:
        """A read-only copy to keep as a cached initial state (see `launch`)."""
        nb = self.copy()
        W, L = self.W, self.L
        buf = np.empty(512 * W + 4 * W * L * (self.v.shape[0] + self.a.shape[0]) + W, dtype=np.uint8)
        nb._files(buf)
        nb.s[...], nb.v[...], nb.a[...], nb.scc[...] = self.s, self.v, self.a, self.scc
        buf.flags.writeable = False
        nb._files(buf)                          # read-only views of the read-only bytes
        for name, _axis in _PER_WAVE:
            getattr(nb, name).flags.writeable = False
        return nb

    def launch(self) -> Batch:
        """A batch to run from this cached initial state (see `template`)."""
        nb = Batch.__new__(Batch)
        nb.W, nb.L, nb.nw = self.W, self.L, self.nw
        nb.mcache = {}
        nb.lane = self.lane
        nb.v, nb.a = self.v, self.a             # their shapes, for _files
        nb._files(np.array(self.regfile))
        nb.em, nb.exec_full = self.em, self.exec_full
        nb.mode, nb.trapsts = self.mode, self.trapsts
        nb.wave, nb.wg, nb.wg_slot, nb.fscr = self.wave, self.wg, self.wg_slot, self.fscr
        nb.pc, nb.gpr = self.pc, self.gpr
        return nb

    def relaunch(self, t: Batch) -> None:
        """Reset this batch, launched from template `t` (`launch`) and since ended as one
        batch (`owns_files`), to the state `t.launch()` makes: its register file gets `t`'s
        bytes, everything else `t`'s arrays and values."""
        self.regfile[:] = t.regfile
        self.em, self.exec_full = t.em, t.exec_full
        self.mode, self.trapsts = t.mode, t.trapsts
        self.wave, self.wg, self.wg_slot, self.fscr = t.wave, t.wg, t.wg_slot, t.fscr
        self.pc, self.lane, self.gpr = t.pc, t.lane, t.gpr
        if self.mcache:
            self.mcache.clear()

    def write_sgprs(self, words: bytes) -> None:
        """Write little-endian dwords `words` to SGPRs 0.. of every wave of a batch with a
        packed register file (`launch`) before it runs."""
        rf = self.regfile
        n = len(words)
        if self.W == 1:
            rf[:n] = words
            return
        for o in range(0, 512 * self.W, 512):
            rf[o:o + n] = words

    def owns_files(self) -> bool:
        """Whether s, v, a, scc are still the views of this batch's packed register file, so
        `relaunch` resets every register."""
        rf = self.regfile
        if rf is None:
            return False
        o = rf.obj
        return self.s.base is o and self.v.base is o and self.a.base is o and self.scc.base is o

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """Merge batches at the same PC into one (waves keep the order of `batches`)."""
        nb = batches[0]._like(sum(b.W for b in batches))
        for name, axis in _PER_WAVE:
            setattr(nb, name, np.concatenate([getattr(b, name) for b in batches], axis=axis))
        nb.exec_full = all(b.exec_full for b in batches)
        return nb
