"""Compile memory instructions: SMEM, FLAT / GLOBAL / SCRATCH, MUBUF and DS (LDS).

Every global access goes through the process's GPUVM: the lanes' addresses are gathered or
scattered through one `vm.view` of the range they cover (one bounds/permission check for the
whole batch); when that range is not one mapping the per-lane `vm.gather` / `vm.scatter` path
finds the exact faulting lane and raises its VMFault.

Private (scratch) memory is swizzled per lane as the hardware does (AMDGPUUsage "Memory
Spaces", private): byte `a` of lane `l` of a wave lives at
    wave_base + (a // 4) * wavefront_size * 4 + l * 4 + (a % 4).
The wave base is FLAT_SCRATCH (s[102:103], set by the kernel prolog) on gfx90a, the
architected per-wave base (scratch base + wave offset) on gfx942 and gfx1100, and the buffer
resource in s[0:3] for MUBUF accesses (with ADD_TID_ENABLE swizzling, as the V# says).
"""

from __future__ import annotations

import re

import numpy as np

from ...kfd import _syscall
from . import atomics
from .decoder import Inst
from .valu import Ctx, illegal, raw_reader

U8, U16, U32, U64 = np.uint8, np.uint16, np.uint32, np.uint64
I64 = np.int64


# ------------------------------------------------------------------------------------------------
# instruction name parsing (both GFX9 and GFX11 spellings)

class MemOp:
    """What a memory mnemonic does: load/store/atomic, element size, dwords, extension."""

    __slots__ = ("aop", "count", "d16", "d16_hi", "kind", "ndw", "ret", "signed", "size", "wide")

    def __init__(self, kind, size=4, ndw=1, signed=False, d16=False, d16_hi=False, aop="", wide=False):
        self.kind = kind
        self.size = size          # bytes per element access (1, 2, 4) or 4 for dword multiples
        self.ndw = ndw            # dwords moved (loads/stores of 4-byte elements)
        self.signed = signed
        self.d16 = d16
        self.d16_hi = d16_hi
        self.aop = aop
        self.wide = wide          # 64-bit atomic
        self.ret = False
        self.count = 1


_SIZES = {"ubyte": (1, False), "sbyte": (1, True), "ushort": (2, False), "sshort": (2, True),
          "u8": (1, False), "i8": (1, True), "u16": (2, False), "i16": (2, True),
          "byte": (1, False), "short": (2, False), "b8": (1, False), "b16": (2, False)}
_DW = {"dword": 1, "dwordx2": 2, "dwordx3": 3, "dwordx4": 4, "b32": 1, "b64": 2, "b96": 3, "b128": 4}
_AOPS = {"swap": "swap", "cmpswap": "cmpswap", "add": "add", "sub": "sub", "smin": "smin", "umin": "umin",
         "smax": "smax", "umax": "umax", "and": "and", "or": "or", "xor": "xor", "inc": "inc", "dec": "dec",
         "min_i32": "smin", "min_u32": "umin", "max_i32": "smax", "max_u32": "umax", "min_i64": "smin",
         "min_u64": "umin", "max_i64": "smax", "max_u64": "umax", "add_f32": "fadd", "add_f64": "fadd",
         "min_f32": "fmin", "max_f32": "fmax", "min_f64": "fmin", "max_f64": "fmax", "csub_u32": "csub",
         "csub": "csub", "fmin": "fmin", "fmax": "fmax", "rsub": "rsub", "wrxchg": "swap",
         "storexchg": "swap", "cmpst": "cmpswap", "cmpstore": "cmpswap", "pk_add_f16": "pk_fadd_f16",
         "pk_add_bf16": "pk_fadd_bf16"}


def parse_vmem(name: str) -> MemOp | None:
    """global_/flat_/scratch_/buffer_ mnemonics."""
    m = re.match(r"^(global|flat|scratch|buffer)_(load|store|atomic)_(.*)$", name)
    if not m:
        return None
    kind, rest = m.group(2), m.group(3)
    if kind == "atomic":
        rest = rest.replace("_rtn", "")
        wide = rest.endswith(("_x2", "_b64", "_u64", "_i64", "_f64"))
        key = rest[:-3] if rest.endswith("_x2") else rest
        aop = _AOPS.get(key) or _AOPS.get(key.rsplit("_", 1)[0] if "_" in key else key)
        if key in ("add_f32", "add_f64", "min_f64", "max_f64", "min_f32", "max_f32", "pk_add_f16", "pk_add_bf16"):
            aop = _AOPS[key]
        if aop is None:
            return None
        return MemOp("atomic", size=8 if wide else 4, ndw=2 if wide else 1, aop=aop, wide=wide)
    if rest.startswith("format") or rest.startswith("lds") or "format" in rest:
        return None
    d16 = "d16" in rest
    hi = "_hi" in rest or rest.startswith("d16_hi")
    core = rest.replace("_d16_hi", "").replace("_d16", "").replace("d16_hi_", "").replace("d16_", "")
    if core in _DW:
        return MemOp(kind, size=4, ndw=_DW[core])
    if core in _SIZES:
        size, signed = _SIZES[core]
        return MemOp(kind, size=size, ndw=1, signed=signed, d16=d16, d16_hi=hi)
    return None


def parse_ds(name: str) -> MemOp | None:
    n = name[3:]
    rtn = "_rtn" in n
    n2 = n.replace("_rtn", "")
    m = re.match(r"^(read|load|write|store)(2st64|2|_2addr_stride64|_2addr)?_(.*)$", n2)
    if m:
        op = "load" if m.group(1) in ("read", "load") else "store"
        two = m.group(2)
        rest = m.group(3)
        d16 = "d16" in rest
        hi = "_hi" in rest
        core = rest.replace("_d16_hi", "").replace("_d16", "").replace("d16_hi_", "").replace("d16_", "")
        if core in _DW:
            mo = MemOp(op, size=4, ndw=_DW[core])
        elif core in _SIZES:
            size, signed = _SIZES[core]
            mo = MemOp(op, size=size, signed=signed, d16=d16, d16_hi=hi)
        elif core == "addtid_b32":
            return None
        else:
            return None
        if two:
            mo.count = 2
            mo.aop = "st64" if "64" in two else ""
        return mo
    if n2 in ("pk_add_f16", "pk_add_bf16"):          # gfx942: two 16-bit float adds per dword
        mo = MemOp("atomic", size=4, ndw=1, aop=_AOPS[n2])
        mo.ret = rtn
        return mo
    m = re.match(r"^(.*)_(b32|u32|i32|f32|b64|u64|i64|f64)$", n2)
    if not m:
        return None
    base, t = m.group(1), m.group(2)
    wide = t.endswith("64")
    if base in ("min", "max"):
        aop = ("s" if t[0] == "i" else "u" if t[0] in "ub" else "f") + base if t[0] != "f" else "f" + base
    else:
        aop = _AOPS.get(base)
        if base == "add" and t[0] == "f":
            aop = "fadd"
        if base == "mskor":
            aop = "mskor"
        if base in ("wrxchg2", "wrxchg2st64", "storexchg_2addr", "condxchg32", "wrap"):
            return None
    if aop is None:
        return None
    mo = MemOp("atomic", size=8 if wide else 4, ndw=2 if wide else 1, aop=aop, wide=wide)
    mo.ret = rtn
    return mo


# ------------------------------------------------------------------------------------------------
# global memory access through the VM


def gather_bytes(vm, addrs: np.ndarray, nbytes: int) -> np.ndarray:
    """(n, nbytes) uint8 read at the n addresses (one view when the range is one mapping)."""
    n = addrs.size
    if n == 0:
        return np.zeros((0, nbytes), dtype=U8)
    lo = int(addrs.min())
    hi = int(addrs.max()) + nbytes
    if hi - lo <= (1 << 32):
        try:
            view = vm.view(lo, hi - lo, False)
        except Exception:  # VMFault / range over a gap: per-lane path finds the exact lane
            view = None
        if view is not None:
            off = (addrs - U64(lo)).astype(np.intp)
            if nbytes % 4 == 0 and lo % 4 == 0 and not (off & 3).any() and view.size % 4 == 0:
                v32 = view.view(U32)
                k = nbytes // 4
                if k == 1:
                    return v32[off >> 2].view(U8).reshape(n, 4)
                return np.ascontiguousarray(v32[(off >> 2)[:, None] + np.arange(k)]).view(U8).reshape(n, nbytes)
            return view[off[:, None] + np.arange(nbytes)]
    return vm.gather(addrs, nbytes, None)


def gather_dwords(vm, addrs: np.ndarray, ndw: int) -> np.ndarray:
    return np.ascontiguousarray(gather_bytes(vm, addrs, 4 * ndw)).view(U32).reshape(addrs.size, ndw)


def writable_view(vm, lo: int, size: int) -> np.ndarray | None:
    """A writable uint8 view of [lo, lo + size) when it lies in one mapping whose GPU writes have
    no side effect (not a doorbell page); None otherwise (take the VM's per-access path, which
    also finds the exact faulting address)."""
    if size > (1 << 32):
        return None
    try:
        m = vm.lookup(lo)
        if m is None or getattr(getattr(m, "bo", None), "on_gpu_write", None) is not None:
            return None
        return vm.view(lo, size, True)
    except Exception:  # VMFault, read-only, range over several BOs
        return None


def scatter_bytes(vm, addrs: np.ndarray, data: np.ndarray) -> None:
    """Store rows of `data` (n, nbytes) uint8 at the addresses; later lanes win on overlap."""
    n = addrs.size
    if n == 0:
        return
    nbytes = data.shape[1]
    lo = int(addrs.min())
    view = writable_view(vm, lo, int(addrs.max()) + nbytes - lo)
    if view is None:
        vm.scatter(addrs, data, None)
        return
    off = (addrs - U64(lo)).astype(np.intp)
    if nbytes % 4 == 0 and lo % 4 == 0 and not (off & 3).any() and view.size % 4 == 0:
        v32 = view.view(U32)
        d32 = np.ascontiguousarray(data).view(U32).reshape(n, nbytes // 4)
        if nbytes == 4:
            v32[off >> 2] = d32[:, 0]
        else:
            v32[(off >> 2)[:, None] + np.arange(nbytes // 4)] = d32
    else:
        view[off[:, None] + np.arange(nbytes)] = data
    vm.notify_write()


def atomic_global(vm, addrs: np.ndarray, mo: MemOp, src: np.ndarray, cmp: np.ndarray | None, want_old: bool):
    n = addrs.size
    dt = U64 if mo.wide else U32
    size = 8 if mo.wide else 4
    if n == 0:
        return np.zeros(0, dtype=dt)
    lo = int(addrs.min())
    view = None
    if lo % size == 0 and not (addrs % U64(size)).any():
        view = writable_view(vm, lo, int(addrs.max()) + size - lo)
    if view is None:
        # lane by lane: the exact faulting lane, ranges over several buffer objects, pages whose
        # writes have side effects (the VM's own atomic), misaligned addresses
        old = np.zeros(n, dtype=dt)
        for i in range(n):
            a = int(addrs[i])
            if mo.aop in _VM_ATOMIC_OPS:
                old[i] = vm.atomic(a, mo.aop, int(src[i]), int(cmp[i]) if cmp is not None else 0, size)
            else:
                one = vm.view(a, size, True).view(dt)
                old[i] = _atomic_commit(one, np.zeros(1, np.intp), mo.aop, src[i:i + 1],
                                        None if cmp is None else cmp[i:i + 1], dt, size)[0]
                vm.notify_write()
        return old
    mem = view.view(dt)
    idx = ((addrs - U64(lo)) // U64(size)).astype(np.intp)
    old = _atomic_commit(mem, idx, mo.aop, src, cmp, dt, size)
    vm.notify_write()
    return old


_VM_ATOMIC_OPS = {"add", "sub", "and", "or", "xor", "swap", "cmpswap", "umin", "umax", "smin", "smax",
                  "inc", "dec", "fadd", "fmin", "fmax"}     # what GPUVM.atomic implements


def _atomic_commit(mem: np.ndarray, idx: np.ndarray, op: str, src: np.ndarray,
                   cmp: np.ndarray | None, dt, size: int) -> np.ndarray:
    """Apply the lanes' atomics in lane order and commit each touched address with a real
    compare-and-swap, so they stay atomic against the CP/SDMA engines and the CPU working on
    the same memory (KFDTest "Atomics" races them). Lanes of an address whose CAS lost a race
    are recomputed from the value found."""
    n = idx.size
    old = np.zeros(n, dtype=dt)
    lanes = np.arange(n)
    base_addr = mem.ctypes.data
    while lanes.size:
        uniq, inv = np.unique(idx[lanes], return_inverse=True)
        expected = mem[uniq].copy()
        private = expected.copy()
        old[lanes] = atomics.apply(private, inv, op, src[lanes],
                                   cmp[lanes] if cmp is not None else None, want_old=True)
        found = np.empty_like(expected)
        offsets = (uniq.astype(np.uint64) * np.uint64(size))
        if not _syscall.cas_many(base_addr, offsets, expected, private, found, size):
            break
        lost = np.flatnonzero(found != expected)
        lanes = lanes[np.isin(inv, lost)]
    return old


# ------------------------------------------------------------------------------------------------
# helpers to move data between VGPRs and gathered rows

def _active(b):
    """Flat indices (wave-major) of active lanes, or None when every lane is active."""
    if b.exec_full:
        return None
    return np.flatnonzero(b.em.reshape(-1))


def _lane_vals(x, b, act):
    x = np.broadcast_to(x, (b.W, b.L)).reshape(-1)
    return x if act is None else x[act]


def _put(b, reg_arr, d: int, values: np.ndarray, act, k: int = 0):
    """Write per-active-lane values (n,) into register d."""
    dst = reg_arr[d]
    if act is None:
        dst[...] = values.reshape(b.W, b.L)
    elif dst.flags.c_contiguous:
        dst.reshape(-1)[act] = values
    else:
        dst.flat[act] = values


def _put_old(b, regs, vdst: int, old: np.ndarray, act) -> None:
    """An atomic's returned values (uint32, or uint64 into a register pair) into vdst."""
    if old.dtype == U64:
        _put(b, regs, vdst, (old & U64(0xFFFFFFFF)).astype(U32), act)
        _put(b, regs, vdst + 1, (old >> U64(32)).astype(U32), act)
    else:
        _put(b, regs, vdst, old.astype(U32), act)


def _extend(data: np.ndarray, mo: MemOp) -> np.ndarray:
    """Sub-dword load rows (n, size) -> uint32 values, zero- or sign-extended."""
    if mo.size == 1:
        v = data[:, 0]
        return v.view(np.int8).astype(np.int32).view(U32) if mo.signed else v.astype(U32)
    v = np.ascontiguousarray(data[:, :2]).view(U16)[:, 0]
    return v.view(np.int16).astype(np.int32).view(U32) if mo.signed else v.astype(U32)


def _d16_merge(old: np.ndarray, v16: np.ndarray, hi: bool) -> np.ndarray:
    v16 = v16 & U32(0xFFFF)
    if hi:
        return (old & U32(0xFFFF)) | (v16 << U32(16))
    return (old & U32(0xFFFF0000)) | v16


# ------------------------------------------------------------------------------------------------
# SMEM

def compile_smem(ctx: Ctx, inst: Inst):
    name = inst.name
    f = inst.f
    if name in ("s_memtime", "s_memrealtime", "s_get_shader_cycles"):
        d = f["sdata"]

        def h(b, rt):
            t = U64(rt.clock())
            b.s[:, d:d + 2].view(U64)[:, 0] = t
            b.scalar_written()
        return h
    if name.startswith(("s_dcache", "s_gl1_inv", "s_icache", "s_atc_probe")):
        return None
    m = re.match(r"^s_(buffer_)?load_(dword|dwordx2|dwordx4|dwordx8|dwordx16|b32|b64|b128|b256|b512)$", name)
    if not m:
        return illegal(inst, "unimplemented instruction")
    buffer = bool(m.group(1))
    ndw = {"dword": 1, "dwordx2": 2, "dwordx4": 4, "dwordx8": 8, "dwordx16": 16, "b32": 1, "b64": 2,
           "b128": 4, "b256": 8, "b512": 16}[m.group(2)]
    d = f["sdata"]
    sbase = f["sbase"]
    imm_off = 0
    soff_reg = None
    if ctx.gfx11:
        imm_off = f["offset"]
        if f["soffset"] != 0x7C:
            soff_reg = f["soffset"]
    else:
        if f["imm"]:
            imm_off = f["offset"]
            if f["soe"]:
                soff_reg = f["soffset"]
        else:
            soff_reg = f["offset"] & 0x7F
    null = ctx.null

    def h(b, rt):
        if buffer:
            base = b.s[:, sbase:sbase + 2].view(U64)[:, 0] & U64(0xFFFFFFFFFFFF)
            nrec = b.s[:, sbase + 2].astype(U64)
        else:
            base = b.s[:, sbase:sbase + 2].view(U64)[:, 0]
        off = np.full(b.W, imm_off, dtype=np.int64)
        if soff_reg is not None and soff_reg != null:
            off = off + b.s[:, soff_reg].astype(np.int64)
        addr = (base.astype(np.int64) + off).astype(U64) & ~U64(3)
        uniq, inv = np.unique(addr, return_inverse=True)
        if uniq.size <= 4:
            rows = np.stack([np.frombuffer(rt.vm.read(int(a), 4 * ndw), dtype=U32) for a in uniq])
            data = rows[inv.reshape(-1)]
        else:
            data = gather_dwords(rt.vm, addr, ndw)
        if buffer:
            rel = (off.astype(np.int64) & ~3)[:, None] + 4 * np.arange(ndw)
            oob = rel >= nrec.astype(np.int64)[:, None]
            data = np.where(oob, U32(0), data)
        b.s[:, d:d + ndw] = data
        b.scalar_written()
    return h


# ------------------------------------------------------------------------------------------------
# FLAT / GLOBAL / SCRATCH / MUBUF

def _scratch_addrs(b, base_w: np.ndarray, poff: np.ndarray, nbytes: int, act):
    """Per-lane private offsets (W, L) -> swizzled addresses of every dword (n, ndw) or byte."""
    L = b.L
    lane = np.broadcast_to(np.arange(L, dtype=np.int64)[None, :], (b.W, L))
    base = np.broadcast_to(base_w.astype(np.int64)[:, None], (b.W, L))
    poff = np.broadcast_to(poff, (b.W, L)).astype(np.int64)
    lane = lane.reshape(-1)
    base = base.reshape(-1)
    poff = poff.reshape(-1)
    if act is not None:
        lane, base, poff = lane[act], base[act], poff[act]
    ndw = max(1, nbytes // 4)
    if nbytes >= 4 and not (poff & 3).any():
        k = np.arange(ndw)
        a = (poff[:, None] // 4 + k) * (4 * L) + lane[:, None] * 4 + base[:, None]
        return a.astype(U64), True
    k = np.arange(nbytes)
    o = poff[:, None] + k
    a = (o // 4) * (4 * L) + lane[:, None] * 4 + (o % 4) + base[:, None]
    return a.astype(U64), False


def compile_vmem(ctx: Ctx, inst: Inst):
    name = inst.name
    if name.startswith("buffer_") and name[7:] in ("wbinvl1", "wbinvl1_vol", "wbl2", "inv", "gl0_inv", "gl1_inv",
                                                    "wbinvl1_sc", "wbinv", "invl2"):
        return None
    mo = parse_vmem(name)
    if mo is None:
        return illegal(inst, "unimplemented instruction")
    if inst.fmt == "MUBUF":
        return _compile_mubuf(ctx, inst, mo)
    return _compile_flat(ctx, inst, mo)


def _compile_flat(ctx: Ctx, inst: Inst, mo: MemOp):
    f = inst.f
    seg = inst.fmt
    off_reg = 0x7C if ctx.gfx11 else 0x7F
    saddr = f["saddr"]
    imm = f["offset"]
    vaddr = f["vaddr"]
    acc = bool(f.get("acc"))
    if seg == "SCRATCH":
        use_v = bool(f["sve"]) if (ctx.gfx11 or ctx.gfx940_memory_encoding) else saddr == off_reg
        use_s = saddr != off_reg
    else:
        use_v = True
        use_s = seg == "GLOBAL" and saddr != off_reg
    ret = mo.kind == "load" or (mo.kind == "atomic" and bool(f["glc"]))
    data = f["data"]
    vdst = f["vdst"]
    reg = "a" if acc else "v"
    architected = ctx.target.architected_flat_scratch
    lds_hi = ctx.lds_aperture >> 32
    priv_hi = ctx.private_aperture >> 32
    lds_ap = ctx.lds_aperture
    priv_ap = ctx.private_aperture

    def scratch_base(b):
        if architected:
            return b.fscr
        return b.s[:, 102:104].view(U64)[:, 0]

    nbytes = mo.size * (mo.ndw if mo.size == 4 else 1)
    fast_ok = seg in ("GLOBAL", "FLAT") and mo.size == 4 and mo.kind in ("load", "store") and imm % 4 == 0

    def h(b, rt):
        act = _active(b)
        regs = getattr(b, reg)
        if fast_ok and act is None and _fast_dwords(b, rt, regs, mo, vaddr, saddr if use_s else -1, imm,
                                                    data, vdst, lds_hi, priv_hi):
            return None
        if seg == "SCRATCH":
            poff = np.int64(imm)
            if use_v:
                poff = b.v[vaddr].astype(np.int64) + poff
            if use_s:
                poff = b.s[:, saddr:saddr + 1].astype(np.int64) + poff
            addrs, dw = _scratch_addrs(b, scratch_base(b), poff, nbytes if mo.kind != "atomic" else mo.size, act)
            return _access(b, rt, regs, addrs, dw, act, mo, ret, data, vdst, scratch=True)
        if use_s:
            a = (b.s[:, saddr:saddr + 2].view(U64) + b.v[vaddr].astype(U64)).astype(U64)
        else:
            a = b.v[vaddr].astype(U64) | (b.v[vaddr + 1].astype(U64) << U64(32))
        if imm:
            a = (a.astype(np.int64) + imm).astype(U64)
        flat = a.reshape(-1) if act is None else np.broadcast_to(a, (b.W, b.L)).reshape(-1)[act]
        if seg == "FLAT":
            hi = flat >> U64(32)
            is_lds = hi == U64(lds_hi)
            is_priv = hi == U64(priv_hi)
            if is_lds.any() or is_priv.any():
                return _flat_split(b, rt, regs, flat, is_lds, is_priv, act, mo, ret, data, vdst, nbytes,
                                   lds_ap, priv_ap, scratch_base)
        return _access(b, rt, regs, flat, False, act, mo, ret, data, vdst)
    return h


def _fast_dwords(b, rt, regs, mo: MemOp, vaddr: int, saddr: int, imm: int, data: int, vdst: int,
                 lds_hi: int, priv_hi: int) -> bool:
    """Whole-batch dword loads/stores with 32-bit address arithmetic, when every lane's address
    shares one upper dword and the covered range is one mapping. False: take the general path."""
    lo = b.v[vaddr]
    if saddr >= 0:
        sb = b.s[:, saddr:saddr + 2].view(U64)[:, 0]
        base = int(sb[0])
        if b.W > 1 and not (sb == sb[0]).all():
            return False
    else:
        hi = b.v[vaddr + 1]
        h0 = int(hi[0, 0])
        if not (hi == h0).all() or h0 in (lds_hi, priv_hi):
            return False
        base = h0 << 32
    lmin = int(lo.min())
    lmax = int(lo.max())
    start = base + lmin + imm
    nbytes = 4 * mo.ndw
    end = base + lmax + imm + nbytes
    if saddr < 0 and (lmin + imm < 0 or lmax + imm + nbytes > (1 << 32)):
        return False
    if start & 3 or (lo & U32(3)).any():
        return False
    vm = rt.vm
    write = mo.kind == "store"
    if write:
        view = writable_view(vm, start, end - start)
    else:
        try:
            view = vm.view(start, end - start, False)
        except Exception:  # VMFault or a range over several BOs: the general path decides
            return False
    if view is None or view.size % 4:
        return False
    v32 = view.view(U32)
    idx = (lo - U32(lmin)) >> U32(2)
    if write:
        if mo.ndw == 1:
            v32[idx] = regs[data]
        else:
            for k in range(mo.ndw):
                v32[idx + U32(k)] = regs[data + k]
        vm.notify_write()
    elif mo.ndw == 1:
        np.take(v32, idx, out=regs[vdst])
    else:
        for k in range(mo.ndw):
            np.take(v32, idx + U32(k), out=regs[vdst + k])
    return True


def _flat_split(b, rt, regs, flat, is_lds, is_priv, act, mo, ret, data, vdst, nbytes, lds_ap, priv_ap,
                scratch_base):
    """FLAT access whose lanes fall in the LDS or private apertures: route each group."""
    all_idx = np.arange(b.W * b.L) if act is None else act
    glob = ~(is_lds | is_priv)
    if glob.any():
        _access(b, rt, regs, flat[glob], False, all_idx[glob], mo, ret, data, vdst)
    if is_lds.any():
        sel = all_idx[is_lds]
        off = (flat[is_lds] - U64(lds_ap)).astype(np.int64)
        wave = sel // b.L
        _lds_access(b, rt, regs, sel, (b.wg_slot[wave, 0] + off), off, mo, ret, data, vdst)
    if is_priv.any():
        sel = all_idx[is_priv]
        poff = np.zeros((b.W, b.L), dtype=np.int64)
        poff.reshape(-1)[sel] = (flat[is_priv] - U64(priv_ap)).astype(np.int64)
        addrs, dw = _scratch_addrs(b, scratch_base(b), poff, nbytes if mo.kind != "atomic" else mo.size, sel)
        _access(b, rt, regs, addrs, dw, sel, mo, ret, data, vdst, scratch=True)


def _src_rows(b, regs, first: int, ndw: int, act) -> np.ndarray:
    """(n, ndw) uint32 rows of VGPRs first..first+ndw-1 for the active lanes."""
    cols = [regs[first + k].reshape(-1) for k in range(ndw)]
    if act is not None:
        cols = [c[act] for c in cols]
    return np.stack(cols, axis=1) if ndw > 1 else cols[0][:, None]


def _access(b, rt, regs, addrs, dwordwise: bool, act, mo: MemOp, ret: bool, data: int, vdst: int,
            scratch: bool = False):
    """Do the load / store / atomic for active lanes whose addresses are given.

    `addrs` is (n,) byte addresses, or for scratch (n, ndw) dword addresses (dwordwise) or
    (n, nbytes) byte addresses.
    """
    vm = rt.vm
    n = addrs.shape[0]
    if n == 0:
        return None
    if mo.kind == "load":
        if scratch:
            if dwordwise:
                vals = gather_dwords(vm, addrs.reshape(-1), 1).reshape(n, -1)
                raw = np.ascontiguousarray(vals).view(U8).reshape(n, -1)
            else:
                raw = gather_bytes(vm, addrs.reshape(-1), 1).reshape(n, -1)
        else:
            raw = gather_bytes(vm, addrs, mo.size * (mo.ndw if mo.size == 4 else 1))
        if mo.size == 4:
            vals = np.ascontiguousarray(raw).view(U32).reshape(n, mo.ndw)
            for k in range(mo.ndw):
                _put(b, regs, vdst + k, vals[:, k], act)
        else:
            v = _extend(raw, mo)
            if mo.d16:
                old = regs[vdst].reshape(-1)
                old = old if act is None else old[act]
                v = _d16_merge(old, v, mo.d16_hi)
            _put(b, regs, vdst, v, act)
        return None
    if mo.kind == "store":
        if mo.size == 4:
            rows = _src_rows(b, regs, data, mo.ndw, act)
            raw = np.ascontiguousarray(rows).view(U8).reshape(n, 4 * mo.ndw)
        else:
            v = _src_rows(b, regs, data, 1, act)[:, 0]
            if mo.d16_hi:
                v = v >> U32(16)
            raw = np.ascontiguousarray(v).view(U8).reshape(n, 4)[:, :mo.size]
        if scratch:
            if dwordwise:
                scatter_bytes(vm, addrs.reshape(-1), np.ascontiguousarray(raw).reshape(-1, 4))
            else:
                scatter_bytes(vm, addrs.reshape(-1), np.ascontiguousarray(raw).reshape(-1, 1))
        else:
            scatter_bytes(vm, addrs, np.ascontiguousarray(raw))
        return None
    # atomic
    w = mo.ndw
    src_rows = _src_rows(b, regs, data, 2 * w if mo.aop == "cmpswap" else w, act)
    if mo.wide:
        src = src_rows[:, 0].astype(U64) | (src_rows[:, 1].astype(U64) << U64(32))
        cmp = (src_rows[:, 2].astype(U64) | (src_rows[:, 3].astype(U64) << U64(32))) if mo.aop == "cmpswap" else None
    else:
        src = src_rows[:, 0]
        cmp = src_rows[:, 1] if mo.aop == "cmpswap" else None
    a = addrs[:, 0] if addrs.ndim == 2 else addrs
    old = atomic_global(vm, a, mo, src, cmp, ret)
    if ret:
        _put_old(b, regs, vdst, old, act)
    return None


def _compile_mubuf(ctx: Ctx, inst: Inst, mo: MemOp):
    f = inst.f
    srsrc = f["srsrc"]
    offen, idxen = f["offen"], f["idxen"]
    vaddr = f["vaddr"]
    inst_off = f["offset"]
    kind, soff_r = raw_reader(ctx, f["soffset"], 32, False, inst.literal)
    acc = bool(f.get("acc"))
    reg = "a" if acc else "v"
    ret = mo.kind == "load" or (mo.kind == "atomic" and bool(f["glc"]))
    vdata = f["vdata"]
    if f.get("lds"):
        return illegal(inst, "unimplemented instruction (buffer load to LDS)")
    nbytes = mo.size * (mo.ndw if mo.size == 4 else 1)

    def h(b, rt):
        act = _active(b)
        regs = getattr(b, reg)
        s = b.s[:, srsrc:srsrc + 4]
        base = (s[:, 0].astype(U64) | ((s[:, 1] & U32(0xFFFF)).astype(U64) << U64(32))).astype(np.int64)
        stride = ((s[:, 1] >> U32(16)) & U32(0x3FFF)).astype(np.int64)
        swizzle = (s[:, 1] >> U32(31)) != 0
        nrec = s[:, 2].astype(np.int64)
        word3 = s[:, 3]
        index_stride = np.array([8, 16, 32, 64])[((word3 >> U32(21)) & U32(3)).astype(np.intp)]
        add_tid = ((word3 >> U32(23)) & U32(1)) != 0
        soff = np.asarray(soff_r if kind == "const" else soff_r(b)).astype(np.int64)
        soff = np.broadcast_to(soff, (b.W, 1)) if np.ndim(soff) else np.full((b.W, 1), int(soff))
        v0 = b.v[vaddr].astype(np.int64)
        index = np.zeros((b.W, b.L), dtype=np.int64)
        offset = np.full((b.W, b.L), inst_off, dtype=np.int64)
        if idxen and offen:
            index = index + v0
            offset = offset + b.v[vaddr + 1].astype(np.int64)
        elif idxen:
            index = index + v0
        elif offen:
            offset = offset + v0
        lane = np.arange(b.L, dtype=np.int64)[None, :]
        index = index + np.where(add_tid[:, None], lane, 0)
        ist = index_stride[:, None] if np.ndim(index_stride) else index_stride
        swz = swizzle[:, None]
        esz = 4
        k = np.arange(max(1, nbytes // 4)) if nbytes >= 4 else np.zeros(1, dtype=np.int64)
        # per dword (or per byte for sub-dword): address and range check
        offk = offset[:, :, None] + 4 * k if nbytes >= 4 else offset[:, :, None]
        idx3 = index[:, :, None]
        sw_addr = (base[:, None, None] + soff[:, :, None]
                   + ((idx3 // ist[:, :, None]) * stride[:, None, None] + (offk // esz) * esz) * ist[:, :, None]
                   + (idx3 % ist[:, :, None]) * esz + offk % esz)
        lin_addr = base[:, None, None] + soff[:, :, None] + offk + idx3 * stride[:, None, None]
        addr = np.where(swz[:, :, None], sw_addr, lin_addr)
        oob = np.where((stride == 0)[:, None, None] | ~swz[:, :, None] & (stride == 0)[:, None, None],
                       offk >= nrec[:, None, None], idx3 >= nrec[:, None, None])
        oob = oob & (nrec[:, None, None] != 0xFFFFFFFF)
        flat_addr = addr.reshape(b.W * b.L, -1)
        flat_oob = oob.reshape(b.W * b.L, -1)
        sel = np.arange(b.W * b.L) if act is None else act
        ok = ~flat_oob[sel].any(axis=1)
        if not ok.all():
            if mo.kind == "load":
                for kk in range(mo.ndw if mo.size == 4 else 1):
                    _put(b, regs, vdata + kk, np.zeros(sel.size, dtype=U32), sel)
            sel = sel[ok]
        if sel.size == 0:
            return None
        a = flat_addr[sel]
        if nbytes >= 4:
            return _access(b, rt, regs, a, True, sel, mo, ret, vdata, vdata, scratch=True) \
                if mo.kind != "atomic" else _access(b, rt, regs, a[:, 0], False, sel, mo, ret, vdata, vdata)
        byte_addrs = a[:, :1] + np.arange(nbytes)
        return _access(b, rt, regs, byte_addrs.astype(U64), False, sel, mo, ret, vdata, vdata, scratch=True)
    return h


# ------------------------------------------------------------------------------------------------
# DS (LDS)

def compile_ds(ctx: Ctx, inst: Inst):
    name = inst.name
    f = inst.f
    if name == "ds_nop":
        return None
    if f.get("gds"):
        return illegal(inst, "unimplemented instruction (GDS)")
    if name in ("ds_swizzle_b32", "ds_permute_b32", "ds_bpermute_b32"):
        return _compile_ds_lane(ctx, inst)
    if name in ("ds_append", "ds_consume"):
        return _compile_ds_append(ctx, inst)
    mo = parse_ds(name)
    if mo is None:
        return illegal(inst, "unimplemented instruction")
    o0, o1 = f["offset0"], f["offset1"]
    addr_r = f["addr"]
    d0, d1, vdst = f["data0"], f["data1"], f["vdst"]
    acc = bool(f.get("acc"))
    reg = "a" if acc else "v"
    if mo.count == 2:
        scale = (mo.size * mo.ndw if mo.size == 4 else mo.size) * (64 if mo.aop == "st64" else 1)
        offs = (o0 * scale, o1 * scale)
    else:
        offs = ((o0 | o1 << 8),)

    fast = mo.size == 4 and mo.kind in ("load", "store") and all(o % 4 == 0 for o in offs)
    nb = 4 * mo.ndw
    step = mo.ndw

    def fast_path(b, rt, regs) -> bool:
        """Dword LDS access for every lane at once: one gather/scatter per dword."""
        addr = b.v[addr_r]
        full = b.exec_full
        em = b.em
        if not full:
            addr = np.where(em, addr, U32(0))
        if int(addr.max()) + max(offs) + nb > rt.lds_size or (addr & U32(3)).any():
            return False
        idx = (addr >> U32(2)).astype(np.int64) + (b.wg_slot >> 2)
        lds32 = rt.lds32
        if mo.kind == "load":
            vals = [lds32[idx + (off >> 2) + k] for i, off in enumerate(offs) for k in range(step)]
            for j, v in enumerate(vals):
                if full:
                    regs[vdst + j][...] = v
                else:
                    np.copyto(regs[vdst + j], v, where=em)
            return True
        for i, off in enumerate(offs):
            src = d0 if i == 0 else d1
            for k in range(step):
                ix = idx + (off >> 2) + k
                if full:
                    lds32[ix] = regs[src + k]
                else:
                    lds32[ix[em]] = regs[src + k][em]
        return True

    def h(b, rt):
        regs = getattr(b, reg)
        if fast and fast_path(b, rt, regs):
            return None
        act = _active(b)
        sel = np.arange(b.W * b.L) if act is None else act
        a = b.v[addr_r].reshape(-1)[sel].astype(np.int64)
        wave = sel // b.L
        base = b.wg_slot[wave, 0]
        if mo.count == 2:
            for i, off in enumerate(offs):
                src = d0 if i == 0 else d1
                dst = vdst + i * (mo.ndw if mo.size == 4 else 1)
                _lds_access(b, rt, regs, sel, base + a + off, a + off, mo, mo.kind == "load", src, dst)
            return None
        _lds_access(b, rt, regs, sel, base + a + offs[0], a + offs[0], mo,
                    mo.kind == "load" or (mo.kind == "atomic" and mo.ret), d0, vdst, data1=d1)
        return None
    return h


def _lds_access(b, rt, regs, sel, flat, rel, mo: MemOp, ret: bool, data: int, vdst: int, data1: int = -1):
    """LDS access for lanes `sel` at byte offsets `flat` into the chunk's LDS (rel: within the
    workgroup's allocation, for the range check: out of range reads 0, writes are dropped)."""
    lds = rt.lds
    size = rt.lds_size
    nbytes = mo.size * (mo.ndw if mo.size == 4 else 1)
    ok = (rel >= 0) & (rel + nbytes <= size)
    if mo.kind == "load":
        n = sel.size
        if mo.size == 4:
            vals = np.zeros((n, mo.ndw), dtype=U32)
            if ok.any():
                fo = flat[ok]
                if not (fo & 3).any():
                    vals[ok] = rt.lds32[(fo >> 2)[:, None] + np.arange(mo.ndw)]
                else:
                    vals[ok] = np.ascontiguousarray(lds[fo[:, None] + np.arange(4 * mo.ndw)]).view(U32)
            for k in range(mo.ndw):
                _put(b, regs, vdst + k, vals[:, k], sel)
        else:
            raw = np.zeros((sel.size, 2), dtype=U8)
            if ok.any():
                raw[ok, :mo.size] = lds[flat[ok][:, None] + np.arange(mo.size)]
            v = _extend(raw, mo)
            if mo.d16:
                v = _d16_merge(regs[vdst].reshape(-1)[sel], v, mo.d16_hi)
            _put(b, regs, vdst, v, sel)
        return
    if mo.kind == "store":
        if not ok.any():
            return
        s2 = sel[ok]
        fo = flat[ok]
        if mo.size == 4:
            rows = _src_rows(b, regs, data, mo.ndw, s2)
            if not (fo & 3).any():
                rt.lds32[(fo >> 2)[:, None] + np.arange(mo.ndw)] = rows
            else:
                lds[fo[:, None] + np.arange(4 * mo.ndw)] = np.ascontiguousarray(rows).view(U8).reshape(-1, 4 * mo.ndw)
        else:
            v = _src_rows(b, regs, data, 1, s2)[:, 0]
            if mo.d16_hi:
                v = v >> U32(16)
            lds[fo[:, None] + np.arange(mo.size)] = np.ascontiguousarray(v).view(U8).reshape(-1, 4)[:, :mo.size]
        return
    # atomics
    dt = U64 if mo.wide else U32
    w = mo.ndw
    ncols = 2 * w if mo.aop in ("cmpswap", "mskor") else w
    rows = _src_rows(b, regs, data, w, sel)
    rows2 = _src_rows(b, regs, data1, w, sel) if ncols > w else None
    if mo.wide:
        src = rows[:, 0].astype(U64) | (rows[:, 1].astype(U64) << U64(32))
        src2 = (rows2[:, 0].astype(U64) | (rows2[:, 1].astype(U64) << U64(32))) if rows2 is not None else None
    else:
        src = rows[:, 0]
        src2 = rows2[:, 0] if rows2 is not None else None
    mem = rt.lds.view(dt)
    esz = 8 if mo.wide else 4
    old = np.zeros(sel.size, dtype=dt)
    okk = ok & ((flat % esz) == 0)
    if okk.any():
        idx = (flat[okk] // esz).astype(np.intp)
        if mo.aop == "cmpswap":
            # GFX9 ds_cmpst: DATA0 = compare, DATA1 = new; GFX11 ds_cmpstore: DATA0 = new, DATA1 = compare
            new, cmpv = (src, src2) if rt.gfx11 else (src2, src)
            old[okk] = atomics.apply(mem, idx, "cmpswap", new[okk], cmpv[okk])
        else:                         # ds_mskor: DATA0 the mask, DATA1 the OR value
            old[okk] = atomics.apply(mem, idx, mo.aop, src[okk], None if src2 is None else src2[okk])
    if ret:
        _put_old(b, regs, vdst, old, sel)


def _compile_ds_lane(ctx: Ctx, inst: Inst):
    """ds_swizzle_b32 / ds_permute_b32 / ds_bpermute_b32: lane exchange without LDS storage."""
    f = inst.f
    name = inst.name
    L = ctx.L
    vdst, addr_r, d0 = f["vdst"], f["addr"], f["data0"]
    off = f["offset0"] | f["offset1"] << 8

    if name == "ds_swizzle_b32":
        lane = np.arange(L)
        if off & 0x8000:
            sel = np.array([(off >> (2 * i)) & 3 for i in range(4)])
            src = (lane & ~3) | sel[lane & 3]
        else:
            and_m, or_m, xor_m = off & 0x1F, (off >> 5) & 0x1F, (off >> 10) & 0x1F
            src = (lane & ~0x1F) | ((((lane & 0x1F) & and_m) | or_m) ^ xor_m)

        def h(b, rt):
            x = b.v[addr_r]
            srcv = x[:, src]
            ok = b.em[:, src]
            np.copyto(b.v[vdst], np.where(ok, srcv, U32(0)), where=b.em)
        return h

    def h(b, rt):
        a = ((b.v[addr_r].astype(np.int64) + off) >> 2) % L
        data = b.v[d0]
        rows = np.arange(b.W)[:, None]
        if name == "ds_bpermute_b32":          # lane i reads data from lane a[i]
            val = np.where(b.em[rows, a], data[rows, a], U32(0))
            np.copyto(b.v[vdst], val, where=b.em)
        else:                                  # ds_permute: lane i writes data to lane a[i]
            out = np.zeros_like(data)
            lanes = np.broadcast_to(np.arange(L), a.shape)
            for_w, for_l = np.nonzero(b.em)
            order = np.lexsort((lanes[for_w, for_l], for_w))
            fw, fl = for_w[order], for_l[order]
            out[fw, a[fw, fl]] = data[fw, fl]
            np.copyto(b.v[vdst], out, where=b.em)
    return h


def _compile_ds_append(ctx: Ctx, inst: Inst):
    f = inst.f
    vdst = f["vdst"]
    off = f["offset0"] | f["offset1"] << 8
    m0 = ctx.m0
    sign = 1 if inst.name == "ds_append" else -1

    def h(b, rt):
        cnt = b.em.sum(axis=1).astype(np.int64)
        addr = (b.s[:, m0] & U32(0xFFFF)).astype(np.int64) + off + b.wg_slot[:, 0]
        mem = rt.lds32
        old = np.zeros(b.W, dtype=U32)
        for w in range(b.W):
            i = int(addr[w]) >> 2
            old[w] = mem[i]
            mem[i] = U32((int(mem[i]) + sign * int(cnt[w])) & 0xFFFFFFFF)
        np.copyto(b.v[vdst], np.broadcast_to(old[:, None], (b.W, ctx.L)), where=b.em)
    return h
