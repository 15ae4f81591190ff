"""Compile scalar ALU and program-control instructions (SOP1/SOP2/SOPK/SOPC/SOPP) into handlers.

Scalar registers of a batch are a (W, 128) uint32 matrix, so every scalar operation is a
numpy operation over the W waves.  Control-flow handlers return the next PC: None to fall
through, an int for a jump every wave takes, or a `Branch` when the waves disagree (the core
then splits the batch).  Semantics from the ISA guides' SOP* chapters; names per LLVM (GFX9
s_andn2_b32 is GFX11 s_and_not1_b32, s_ff1_i32_b32 is s_ctz_i32_b32, …).
"""

from __future__ import annotations

import numpy as np

from . import numerics as nm
from .decoder import Inst
from .errors import ShaderException
from .valu import Ctx, const_value, illegal

U32, U64 = np.uint32, np.uint64
I32, I64 = np.int32, np.int64

END = "end"
BARRIER = "barrier"


class Branch:
    """Waves with `taken` set go to `target`, the others to `fallthrough`."""

    __slots__ = ("cond", "fallthrough", "taken", "target")

    def __init__(self, taken: np.ndarray, target: int, fallthrough: int, cond: str = "") -> None:
        self.taken = taken
        self.target = target
        self.fallthrough = fallthrough
        self.cond = cond


class GprIdx:
    """GFX9 VGPR indexing mode change (s_set_gpr_idx_on/_off/_mode/_idx).

    `index` is M0[7:0] per wave (None: unchanged), `mode` the enable bits (SRC0 1, SRC1 2,
    SRC2 4, DST 8; None: unchanged), `on` False for s_set_gpr_idx_off.
    """

    __slots__ = ("index", "mode", "on")

    def __init__(self, index, mode, on: bool) -> None:
        self.index = index
        self.mode = mode
        self.on = on


class MultiJump:
    """Per-wave targets (s_setpc_b64 / s_swappc_b64 with divergent addresses)."""

    __slots__ = ("targets",)

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets


# ------------------------------------------------------------------------------------------------
# operand access

def sreader(ctx: Ctx, inst: Inst, val: int, bits: int, fp: bool = False):
    """Reader of a scalar source: returns (W,) arrays or a numpy scalar (uint32 / uint64)."""
    c = const_value(ctx, val, bits, fp, inst.literal)
    if c is not None:
        v = U64(c) if bits == 64 else U32(c & 0xFFFFFFFF)
        return lambda b: v
    if val == 253:
        return lambda b: b.scc.astype(U64 if bits == 64 else U32)
    if val == 251:
        n = ctx.nw
        return lambda b: (~b.s[:, 106:106 + n].any(axis=1)).astype(U32)
    if val == 252:
        n = ctx.nw
        return lambda b: (~b.s[:, 126:126 + n].any(axis=1)).astype(U32)
    if val < 128:
        i = val
        if bits == 64:
            return lambda b: b.s[:, i:i + 2].view(U64)[:, 0]
        return lambda b: b.s[:, i]
    return None


def swriter(ctx: Ctx, d: int, bits: int):
    """Writer(b, value) for a scalar destination; keeps EXEC's unpacked mask in sync."""
    if d == ctx.null:
        return lambda b, v: None
    touches_exec = d <= 127 and d + (2 if bits == 64 else 1) > 126
    if bits == 64:
        def w(b, v):
            b.s[:, d:d + 2].view(U64)[:, 0] = v
            if touches_exec:
                b.exec_changed()
            else:
                b.scalar_written()
        return w

    def w(b, v):
        b.s[:, d] = v
        if touches_exec:
            b.exec_changed()
        else:
            b.scalar_written()
    return w


def _bits(name: str) -> int:
    return 64 if name.endswith(("_b64", "_u64", "_i64")) else 32


# ------------------------------------------------------------------------------------------------
# operation tables: fn(a, b, scc) -> (result, scc or None)

def _nz(r):
    return np.asarray(r) != 0


def _add_u32(a, b, scc):
    s = np.asarray(a).astype(U64) + np.asarray(b).astype(U64)
    return s.astype(U32), (s >> U64(32)) != 0


def _sub_u32(a, b, scc):
    return (np.asarray(a) - np.asarray(b)).astype(U32), np.asarray(a) < np.asarray(b)


def _addc_u32(a, b, scc):
    s = np.asarray(a).astype(U64) + np.asarray(b).astype(U64) + np.asarray(scc).astype(U64)
    return s.astype(U32), (s >> U64(32)) != 0


def _subb_u32(a, b, scc):
    d = np.asarray(a).astype(I64) - np.asarray(b).astype(I64) - np.asarray(scc).astype(I64)
    return d.astype(U32), d < 0


def _add_i32(a, b, scc):
    s = np.asarray(a).astype(U32).view(I32).astype(I64) + np.asarray(b).astype(U32).view(I32).astype(I64)
    return s.astype(U32), (s > 2147483647) | (s < -2147483648)


def _sub_i32(a, b, scc):
    s = np.asarray(a).astype(U32).view(I32).astype(I64) - np.asarray(b).astype(U32).view(I32).astype(I64)
    return s.astype(U32), (s > 2147483647) | (s < -2147483648)


def _i(x):
    return np.asarray(x).astype(U32).view(I32)


def _i64(x):
    return np.asarray(x).astype(U64).view(I64)


def _bfe(a, b, bits: int, signed: bool):
    a = np.asarray(a)
    b = np.asarray(b).astype(U32)
    off = (b & U32(bits - 1)).astype(U64)
    w = ((b >> U32(16)) & U32(0x7F)).astype(U64)
    w = np.minimum(w, U64(bits))
    big = a.astype(U64)
    x = big >> off
    mask = np.where(w >= 64, U64(0xFFFFFFFFFFFFFFFF), (U64(1) << np.minimum(w, U64(63))) - U64(1))
    x = x & mask
    if signed:
        sign = np.where(w > 0, (x >> np.maximum(w, U64(1)) - U64(1)) & U64(1), U64(0)) != 0
        x = np.where(sign, x | ~mask, x)
    x = np.where(w == 0, U64(0), x)
    return x.astype(U32) if bits == 32 else x


SOP2: dict[str, object] = {
    "s_add_u32": _add_u32, "s_sub_u32": _sub_u32, "s_add_i32": _add_i32, "s_sub_i32": _sub_i32,
    "s_addc_u32": _addc_u32, "s_subb_u32": _subb_u32,
    "s_min_i32": lambda a, b, c: (np.where(_i(a) < _i(b), a, b), _i(a) < _i(b)),
    "s_min_u32": lambda a, b, c: (np.where(np.asarray(a) < np.asarray(b), a, b), np.asarray(a) < np.asarray(b)),
    "s_max_i32": lambda a, b, c: (np.where(_i(a) > _i(b), a, b), _i(a) > _i(b)),
    "s_max_u32": lambda a, b, c: (np.where(np.asarray(a) > np.asarray(b), a, b), np.asarray(a) > np.asarray(b)),
    "s_cselect_b32": lambda a, b, c: (np.where(c, a, b), None),
    "s_cselect_b64": lambda a, b, c: (np.where(c, a, b), None),
    "s_mul_i32": lambda a, b, c: ((np.asarray(a).astype(U64) * np.asarray(b).astype(U64)).astype(U32), None),
    "s_mul_hi_u32": lambda a, b, c: (((np.asarray(a).astype(U64) * np.asarray(b).astype(U64)) >> U64(32)).astype(U32), None),
    "s_mul_hi_i32": lambda a, b, c: (((_i(a).astype(I64) * _i(b).astype(I64)) >> I64(32)).astype(U32), None),
    "s_absdiff_i32": lambda a, b, c: (_r := np.abs(_i(a).astype(I64) - _i(b).astype(I64)).astype(U32), _r != 0),
    "s_bfm_b32": lambda a, b, c: ((((U64(1) << (np.asarray(a) & U32(31)).astype(U64)) - U64(1))
                                   << (np.asarray(b) & U32(31)).astype(U64)).astype(U32), None),
    "s_bfm_b64": lambda a, b, c: (((U64(1) << (np.asarray(a) & U32(63)).astype(U64)) - U64(1))
                                  << (np.asarray(b) & U32(63)).astype(U64), None),
    "s_bfe_u32": lambda a, b, c: (_r := _bfe(a, b, 32, False), _r != 0),
    "s_bfe_i32": lambda a, b, c: (_r := _bfe(a, b, 32, True), _r != 0),
    "s_bfe_u64": lambda a, b, c: (_r := _bfe(a, b, 64, False), _r != 0),
    "s_bfe_i64": lambda a, b, c: (_r := _bfe(a, b, 64, True), _r != 0),
    "s_pack_ll_b32_b16": lambda a, b, c: ((np.asarray(a) & U32(0xFFFF)) | (np.asarray(b) << U32(16)), None),
    "s_pack_lh_b32_b16": lambda a, b, c: ((np.asarray(a) & U32(0xFFFF)) | (np.asarray(b) & U32(0xFFFF0000)), None),
    "s_pack_hl_b32_b16": lambda a, b, c: ((np.asarray(a) >> U32(16)) | (np.asarray(b) << U32(16)), None),
    "s_pack_hh_b32_b16": lambda a, b, c: ((np.asarray(a) >> U32(16)) | (np.asarray(b) & U32(0xFFFF0000)), None),
}
for _n in (1, 2, 3, 4):
    def _lshl_add(a, b, c, n=_n):
        s = (np.asarray(a).astype(U64) << U64(n)) + np.asarray(b).astype(U64)
        return s.astype(U32), (s >> U64(32)) != 0
    SOP2[f"s_lshl{_n}_add_u32"] = _lshl_add

_LOGIC = {
    "and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
    "andn2": lambda a, b: a & ~b, "orn2": lambda a, b: a | ~b, "and_not1": lambda a, b: a & ~b,
    "or_not1": lambda a, b: a | ~b, "nand": lambda a, b: ~(a & b), "nor": lambda a, b: ~(a | b),
    "xnor": lambda a, b: ~(a ^ b),
}
for _k, _f in _LOGIC.items():
    for _w in ("b32", "b64"):
        SOP2[f"s_{_k}_{_w}"] = lambda a, b, c, f=_f: (_r := f(np.asarray(a), np.asarray(b)), _r != 0)
for _w, _dt, _it in (("32", U32, I32), ("64", U64, I64)):
    _m = int(_w) - 1
    SOP2[f"s_lshl_b{_w}"] = lambda a, b, c, m=_m, dt=_dt: (
        _r := (np.asarray(a).astype(dt) << (np.asarray(b).astype(dt) & dt(m))).astype(dt), _r != 0)
    SOP2[f"s_lshr_b{_w}"] = lambda a, b, c, m=_m, dt=_dt: (
        _r := (np.asarray(a).astype(dt) >> (np.asarray(b).astype(dt) & dt(m))).astype(dt), _r != 0)
    SOP2[f"s_ashr_i{_w}"] = lambda a, b, c, m=_m, dt=_dt, it=_it: (
        _r := (np.asarray(a).astype(dt).view(it) >> (np.asarray(b).astype(dt) & dt(m)).astype(it)).view(dt), _r != 0)

# s_lshl/lshr/ashr shift counts come from the low bits of a 32-bit src1 even for 64-bit ops
SOP2_SRC1_32 = {"s_lshl_b64", "s_lshr_b64", "s_ashr_i64", "s_bfe_u64", "s_bfe_i64", "s_bfm_b64"}
SOP2_SRC_32 = {"s_bfm_b64"}

_SEL = {"eq": np.equal, "lg": np.not_equal, "gt": np.greater, "ge": np.greater_equal,
        "lt": np.less, "le": np.less_equal}


def _sop1(name: str):
    """fn(a, scc) -> (result, scc or None) for value-only SOP1 operations."""
    bits = _bits(name)
    dt = U64 if bits == 64 else U32
    table = {
        "s_mov_b32": lambda a, c: (a, None), "s_mov_b64": lambda a, c: (a, None),
        "s_not_b32": lambda a, c: (_r := ~np.asarray(a, dt), _r != 0),
        "s_not_b64": lambda a, c: (_r := ~np.asarray(a, dt), _r != 0),
        "s_brev_b32": lambda a, c: (nm.bitrev32(a), None),
        "s_brev_b64": lambda a, c: (nm.bitrev64(a), None),
        "s_bcnt0_i32_b32": lambda a, c: (_r := (32 - nm.popcount(np.asarray(a, U32))).astype(U32), _r != 0),
        "s_bcnt0_i32_b64": lambda a, c: (_r := (64 - nm.popcount(np.asarray(a, U64))).astype(U32), _r != 0),
        "s_bcnt1_i32_b32": lambda a, c: (_r := nm.popcount(np.asarray(a, U32)), _r != 0),
        "s_bcnt1_i32_b64": lambda a, c: (_r := nm.popcount(np.asarray(a, U64)), _r != 0),
        "s_ff0_i32_b32": lambda a, c: (nm.ctz32(~np.asarray(a, U32)), None),
        "s_ff0_i32_b64": lambda a, c: (nm.ctz64(~np.asarray(a, U64)), None),
        "s_ff1_i32_b32": lambda a, c: (nm.ctz32(a), None), "s_ctz_i32_b32": lambda a, c: (nm.ctz32(a), None),
        "s_ff1_i32_b64": lambda a, c: (nm.ctz64(a), None), "s_ctz_i32_b64": lambda a, c: (nm.ctz64(a), None),
        "s_flbit_i32_b32": lambda a, c: (nm.clz32(a), None), "s_clz_i32_u32": lambda a, c: (nm.clz32(a), None),
        "s_flbit_i32_b64": lambda a, c: (nm.clz64(a), None), "s_clz_i32_u64": lambda a, c: (nm.clz64(a), None),
        "s_flbit_i32": lambda a, c: (nm.cls32(a), None), "s_cls_i32": lambda a, c: (nm.cls32(a), None),
        "s_flbit_i32_i64": lambda a, c: (nm.cls64(a), None), "s_cls_i32_i64": lambda a, c: (nm.cls64(a), None),
        "s_sext_i32_i8": lambda a, c: ((np.asarray(a, U32) << U32(24)).view(I32) >> I32(24), None),
        "s_sext_i32_i16": lambda a, c: ((np.asarray(a, U32) << U32(16)).view(I32) >> I32(16), None),
        "s_abs_i32": lambda a, c: (_r := np.abs(_i(a).astype(I64)).astype(U32), _r != 0),
        "s_wqm_b32": lambda a, c: (_r := _wqm(a, 32), _r != 0),
        "s_wqm_b64": lambda a, c: (_r := _wqm(a, 64), _r != 0),
        "s_quadmask_b32": lambda a, c: (_r := _quadmask(a, 32), _r != 0),
        "s_quadmask_b64": lambda a, c: (_r := _quadmask(a, 64), _r != 0),
        "s_bitreplicate_b64_b32": lambda a, c: (_bitrep(a), None),
    }
    return table.get(name)


def _wqm(a, bits):
    a = np.asarray(a).astype(U64)
    out = np.zeros_like(a)
    for q in range(0, bits, 4):
        nib = (a >> U64(q)) & U64(0xF)
        out |= np.where(nib != 0, U64(0xF) << U64(q), U64(0))
    return out.astype(U32 if bits == 32 else U64)


def _quadmask(a, bits):
    a = np.asarray(a).astype(U64)
    out = np.zeros_like(a)
    for q in range(0, bits, 4):
        out |= np.where(((a >> U64(q)) & U64(0xF)) != 0, U64(1) << U64(q // 4), U64(0))
    return out.astype(U32 if bits == 32 else U64)


def _bitrep(a):
    a = np.asarray(a).astype(U64)
    out = np.zeros_like(a)
    for i in range(32):
        bit = (a >> U64(i)) & U64(1)
        out |= (bit << U64(2 * i)) | (bit << U64(2 * i + 1))
    return out


# saveexec family: new EXEC from (S0, EXEC); D = old EXEC (saveexec) or new EXEC (wrexec)
_SAVEEXEC = {
    "and": lambda s, e: s & e, "or": lambda s, e: s | e, "xor": lambda s, e: s ^ e,
    "andn2": lambda s, e: s & ~e, "orn2": lambda s, e: s | ~e, "nand": lambda s, e: ~(s & e),
    "nor": lambda s, e: ~(s | e), "xnor": lambda s, e: ~(s ^ e), "andn1": lambda s, e: ~s & e,
    "orn1": lambda s, e: ~s | e, "and_not1": lambda s, e: s & ~e, "or_not1": lambda s, e: s | ~e,
    "and_not0": lambda s, e: ~s & e, "or_not0": lambda s, e: ~s | e,
}


# ------------------------------------------------------------------------------------------------

def compile_salu(ctx: Ctx, inst: Inst):
    fmt = inst.fmt
    if fmt == "SOPP":
        return compile_sopp(ctx, inst)
    try:
        if fmt == "SOP2":
            return _sop2(ctx, inst)
        if fmt == "SOP1":
            return _sop1h(ctx, inst)
        if fmt == "SOPC":
            return _sopc(ctx, inst)
        if fmt == "SOPK":
            return _sopk(ctx, inst)
    except _Unsupported as e:
        return illegal(inst, str(e))
    return illegal(inst, "unimplemented instruction")


class _Unsupported(Exception):
    pass


def _reader(ctx, inst, field, bits, fp=False):
    r = sreader(ctx, inst, inst.f[field], bits, fp)
    if r is None:
        raise _Unsupported(f"unsupported scalar operand {inst.f[field]}")
    return r


def _sop2(ctx: Ctx, inst: Inst):
    name = inst.name
    fn = SOP2.get(name)
    if fn is None:
        return illegal(inst, "unimplemented instruction")
    bits = _bits(name)
    b0 = 32 if name in SOP2_SRC_32 else bits
    b1 = 32 if name in SOP2_SRC1_32 else bits
    r0 = _reader(ctx, inst, "ssrc0", b0)
    r1 = _reader(ctx, inst, "ssrc1", b1)
    dbits = 32 if name.startswith(("s_bcnt", "s_ff", "s_flbit")) else bits
    w = swriter(ctx, inst.f["sdst"], dbits)

    def h(b, rt):
        res, scc = fn(r0(b), r1(b), b.scc)
        w(b, res)
        if scc is not None:
            b.scc[...] = scc
    return h


def _sop1h(ctx: Ctx, inst: Inst):
    name = inst.name
    f = inst.f
    bits = _bits(name)
    fn = _sop1(name)
    if fn is not None:
        src_bits = 32 if name == "s_bitreplicate_b64_b32" else bits
        r0 = _reader(ctx, inst, "ssrc0", src_bits)
        dbits = 32 if name.startswith(("s_bcnt", "s_ff", "s_flbit", "s_ctz", "s_clz", "s_cls")) else bits
        if name == "s_bitreplicate_b64_b32":
            dbits = 64
        w = swriter(ctx, f["sdst"], dbits)

        def h(b, rt):
            res, scc = fn(r0(b), b.scc)
            w(b, res)
            if scc is not None:
                b.scc[...] = scc
        return h
    if name in ("s_cmov_b32", "s_cmov_b64"):
        r0 = _reader(ctx, inst, "ssrc0", bits)
        rd = sreader(ctx, inst, f["sdst"], bits)
        w = swriter(ctx, f["sdst"], bits)

        def h(b, rt):
            w(b, np.where(b.scc, r0(b), rd(b)))
        return h
    if name in ("s_bitset0_b32", "s_bitset1_b32", "s_bitset0_b64", "s_bitset1_b64"):
        r0 = _reader(ctx, inst, "ssrc0", 32)
        rd = sreader(ctx, inst, f["sdst"], bits)
        w = swriter(ctx, f["sdst"], bits)
        dt = U64 if bits == 64 else U32
        one = "bitset1" in name

        def h(b, rt):
            bit = dt(1) << (np.asarray(r0(b)).astype(dt) & dt(bits - 1))
            cur = np.asarray(rd(b), dt)
            w(b, cur | bit if one else cur & ~bit)
        return h
    if name == "s_getpc_b64":
        w = swriter(ctx, f["sdst"], 64)
        nxt = U64(inst.pc + inst.size)

        def h(b, rt):
            w(b, nxt)
        return h
    if name in ("s_setpc_b64", "s_swappc_b64"):
        r0 = _reader(ctx, inst, "ssrc0", 64)
        w = swriter(ctx, f["sdst"], 64) if name == "s_swappc_b64" else None
        nxt = U64(inst.pc + inst.size)

        def h(b, rt):
            tgt = np.broadcast_to(np.asarray(r0(b), U64), (b.W,)).copy()
            if w is not None:
                w(b, nxt)
            return _jump(tgt)
        return h
    if name.endswith(("_saveexec_b32", "_saveexec_b64", "_wrexec_b32", "_wrexec_b64")):
        key = name[2:].rsplit("_", 2)[0]
        ef = _SAVEEXEC.get(key)
        if ef is None:
            return illegal(inst, "unimplemented instruction")
        r0 = _reader(ctx, inst, "ssrc0", bits)
        w = swriter(ctx, f["sdst"], bits)
        wr = "_wrexec_" in name
        dt = U64 if bits == 64 else U32
        nw = ctx.nw

        def h(b, rt):
            s0 = np.asarray(r0(b), dt)
            old = b.s[:, 126:128].view(U64)[:, 0].copy() if bits == 64 else b.s[:, 126].copy()
            new = ef(s0, old).astype(dt)
            if bits == 64:
                b.s[:, 126:128].view(U64)[:, 0] = new
            else:
                b.s[:, 126] = new
            b.exec_changed()
            w(b, new if wr else old)
            b.scc[...] = new != 0
            _ = nw
        return h
    if name in ("s_movrels_b32", "s_movrels_b64", "s_movreld_b32", "s_movreld_b64"):
        return _movrel(ctx, inst, bits)
    if name == "s_set_gpr_idx_idx":
        r0 = _reader(ctx, inst, "ssrc0", 32)
        m0 = ctx.m0

        def h(b, rt):
            idx = np.broadcast_to(np.asarray(r0(b), U32) & U32(0xFF), (b.W,)).copy()
            b.s[:, m0] = (b.s[:, m0] & ~U32(0xFF)) | idx
            return GprIdx(idx, None, True)
        return h
    if name in ("s_rfe_b64", "s_mov_fed_b32"):
        return illegal(inst, "unimplemented instruction")
    if name in ("s_sendmsg_rtn_b32", "s_sendmsg_rtn_b64"):
        # GFX11 messages with a return value: MSG_RTN_GET_REALTIME (131) reads the 100 MHz
        # clock (there is no s_memrealtime on GFX11); doorbell / DDID / TMA / TBA read as 0.
        w = swriter(ctx, f["sdst"], bits)
        msg = f["ssrc0"]

        def h(b, rt):
            v = int(rt.clock()) if msg == 131 else 0
            w(b, U32(v & 0xFFFFFFFF) if bits == 32 else U64(v & 0xFFFFFFFFFFFFFFFF))
        return h
    return illegal(inst, "unimplemented instruction")


def _movrel(ctx: Ctx, inst: Inst, bits: int):
    f = inst.f
    n = 2 if bits == 64 else 1
    m0 = ctx.m0
    src_rel = "movrels" in inst.name

    def h(b, rt):
        off = b.s[:, m0].astype(np.int64)
        rows = np.arange(b.W)
        for k in range(n):
            if src_rel:
                b.s[rows, f["sdst"] + k] = b.s[rows, np.clip(f["ssrc0"] + off + k, 0, 127)]
            else:
                b.s[rows, np.clip(f["sdst"] + off + k, 0, 127)] = b.s[rows, f["ssrc0"] + k]
        b.exec_changed()
    return h


def _jump(targets: np.ndarray):
    t0 = int(targets[0])
    if (targets == targets[0]).all():
        return t0
    return MultiJump(targets)


def _sopc(ctx: Ctx, inst: Inst):
    name = inst.name
    parts = name.split("_")
    if name.startswith("s_cmp_"):
        cond, typ = parts[2], parts[3]
        bits = 64 if typ == "u64" else 32
        r0 = _reader(ctx, inst, "ssrc0", bits)
        r1 = _reader(ctx, inst, "ssrc1", bits)
        cmp = _SEL[cond]
        signed = typ == "i32"

        def h(b, rt):
            a, c = r0(b), r1(b)
            if signed:
                a, c = _i(a), _i(c)
            b.scc[...] = cmp(a, c)
        return h
    if name.startswith("s_bitcmp"):
        bits = _bits(name)
        r0 = _reader(ctx, inst, "ssrc0", bits)
        r1 = _reader(ctx, inst, "ssrc1", 32)
        want = 1 if "bitcmp1" in name else 0
        dt = U64 if bits == 64 else U32

        def h(b, rt):
            bit = (np.asarray(r0(b), dt) >> (np.asarray(r1(b)).astype(dt) & dt(bits - 1))) & dt(1)
            b.scc[...] = bit == want
        return h
    if name == "s_set_gpr_idx_on":
        # MODE.gpr_idx_en = 1; M0[7:0] = S0[7:0]; M0[15:12] = SIMM4 (the ssrc1 field)
        r0 = _reader(ctx, inst, "ssrc0", 32)
        mode = inst.f["ssrc1"] & 0xF
        m0 = ctx.m0

        def h(b, rt):
            idx = np.broadcast_to(np.asarray(r0(b), U32) & U32(0xFF), (b.W,)).copy()
            b.s[:, m0] = (b.s[:, m0] & ~U32(0xF0FF)) | idx | U32(mode << 12)
            return GprIdx(idx, mode, True)
        return h
    if name == "s_setvskip":
        return illegal(inst, "unimplemented instruction")
    return illegal(inst, "unimplemented instruction")


def _sopk(ctx: Ctx, inst: Inst):
    name = inst.name
    f = inst.f
    imm = f["simm16"]
    simm = U32((imm - 0x10000 if imm & 0x8000 else imm) & 0xFFFFFFFF)
    uimm = U32(imm)
    d = f["sdst"]
    if name == "s_movk_i32":
        w = swriter(ctx, d, 32)
        return lambda b, rt: w(b, simm)
    if name == "s_cmovk_i32":
        w = swriter(ctx, d, 32)
        rd = sreader(ctx, inst, d, 32)
        return lambda b, rt: w(b, np.where(b.scc, simm, rd(b)))
    if name.startswith("s_cmpk_"):
        _, _, cond, typ = name.split("_")
        rd = sreader(ctx, inst, d, 32)
        cmp = _SEL[cond]
        if typ == "i32":
            k = simm.view(I32)
            return lambda b, rt: b.scc.__setitem__(Ellipsis, cmp(_i(rd(b)), k))
        return lambda b, rt: b.scc.__setitem__(Ellipsis, cmp(rd(b), uimm))
    if name == "s_addk_i32":
        rd = sreader(ctx, inst, d, 32)
        w = swriter(ctx, d, 32)

        def h(b, rt):
            res, scc = _add_i32(rd(b), simm, None)
            w(b, res)
            b.scc[...] = scc
        return h
    if name == "s_mulk_i32":
        rd = sreader(ctx, inst, d, 32)
        w = swriter(ctx, d, 32)
        return lambda b, rt: w(b, (np.asarray(rd(b)).astype(U64) * U64(simm)).astype(U32))
    if name == "s_getreg_b32":
        w = swriter(ctx, d, 32)
        rid, off, size = imm & 0x3F, (imm >> 6) & 0x1F, ((imm >> 11) & 0x1F) + 1
        mask = U32(((1 << size) - 1) & 0xFFFFFFFF)

        def h(b, rt):
            val = rt.hwreg(b, rid)
            w(b, (np.asarray(val, U32) >> U32(off)) & mask)
        return h
    if name in ("s_setreg_b32", "s_setreg_imm32_b32"):
        rid, off, size = imm & 0x3F, (imm >> 6) & 0x1F, ((imm >> 11) & 0x1F) + 1
        mask = ((1 << size) - 1) << off
        if name == "s_setreg_b32":
            rd = sreader(ctx, inst, d, 32)
        else:
            lit = U32(inst.literal or 0)
            rd = lambda b: lit  # noqa: E731

        def h(b, rt):
            rt.set_hwreg(b, rid, (np.asarray(rd(b), U32) << U32(off)) & U32(mask & 0xFFFFFFFF),
                         U32(mask & 0xFFFFFFFF))
        return h
    if name == "s_call_b64":
        w = swriter(ctx, d, 64)
        nxt = inst.pc + 4
        tgt = inst.pc + 4 + 4 * (imm - 0x10000 if imm & 0x8000 else imm)

        def h(b, rt):
            w(b, U64(nxt))
            return tgt
        return h
    if name.startswith("s_waitcnt") or name in ("s_version", "s_nop"):
        return None
    return illegal(inst, "unimplemented instruction")


# ------------------------------------------------------------------------------------------------
# SOPP: program control

def compile_sopp(ctx: Ctx, inst: Inst):
    name = inst.name
    imm = inst.f["simm16"]
    simm = imm - 0x10000 if imm & 0x8000 else imm
    target = inst.pc + 4 + 4 * simm
    nxt = inst.pc + 4
    nw = ctx.nw
    if name == "s_endpgm":
        return lambda b, rt: END
    if name == "s_branch":
        return lambda b, rt: target
    if name.startswith("s_cbranch_"):
        cond = name[len("s_cbranch_"):]
        if cond == "scc0":
            get = lambda b: ~b.scc  # noqa: E731
        elif cond == "scc1":
            get = lambda b: b.scc  # noqa: E731
        elif cond == "vccz":
            get = lambda b: ~b.s[:, 106:106 + nw].any(axis=1)  # noqa: E731
        elif cond == "vccnz":
            get = lambda b: b.s[:, 106:106 + nw].any(axis=1)  # noqa: E731
        elif cond == "execz":
            get = lambda b: ~b.s[:, 126:126 + nw].any(axis=1)  # noqa: E731
        elif cond == "execnz":
            get = lambda b: b.s[:, 126:126 + nw].any(axis=1)  # noqa: E731
        else:                       # debugger branches: never taken without a debugger
            return None

        def h(b, rt):
            c = get(b)
            if c.all():
                return target
            if not c.any():
                return None
            return Branch(c, target, nxt, cond)
        return h
    if name == "s_barrier":
        return lambda b, rt: BARRIER
    if name == "s_trap":
        trap_id = imm & 0xFF

        def h(b, rt):
            raise ShaderException("trap", pc=inst.pc, mnemonic=rt.render(inst), encoding=inst.encoding, trap_id=trap_id,
                                  message=f"s_trap {trap_id} executed at PC 0x{inst.pc:x} "
                                          f"(encoding {inst.encoding}, target {rt.target.name})")
        return h
    if name in ("s_sendmsg", "s_sendmsghalt"):
        msg = imm & (0xFF if ctx.gfx11 else 0xF)
        m0 = ctx.m0

        def h(b, rt):
            if msg == 1:                    # MSG_INTERRUPT: M0[23:0] is the context id
                rt.send_interrupt(b.s[:, m0])
            if name == "s_sendmsghalt":
                return END
            return None
        return h
    if name in ("s_round_mode", "s_denorm_mode"):
        # GFX10+: MODE.FP_ROUND [3:0] / MODE.FP_DENORM [7:4] from SIMM16[3:0]
        sh = U32(0 if name == "s_round_mode" else 4)
        val = U32(imm & 0xF)

        def h(b, rt):
            # replaced, not written in place: a launched batch shares it (Batch.launch)
            b.mode = (b.mode & ~(U32(0xF) << sh)) | (val << sh)
        return h
    if name in ("s_nop", "s_waitcnt", "s_sleep", "s_setprio", "s_icache_inv", "s_clause", "s_delay_alu",
                "s_waitcnt_depctr", "s_code_end", "s_set_inst_prefetch_distance", "s_inst_prefetch",
                "s_incperflevel", "s_decperflevel", "s_ttracedata", "s_ttracedata_imm", "s_wakeup",
                "s_setkill", "s_wait_event", "s_wait_idle",
                "s_cbranch_cdbgsys", "s_cbranch_cdbguser", "s_cbranch_cdbgsys_or_user",
                "s_cbranch_cdbgsys_and_user"):
        return None
    if name == "s_set_gpr_idx_off":
        return lambda b, rt: GprIdx(None, None, False)
    if name == "s_set_gpr_idx_mode":
        mode = imm & 0xF
        m0 = ctx.m0

        def h(b, rt):
            b.s[:, m0] = (b.s[:, m0] & ~U32(0xF000)) | U32(mode << 12)
            return GprIdx(None, mode, True)
        return h
    if name == "s_sethalt":
        return (lambda b, rt: END) if imm & 1 else None
    if name in ("s_endpgm_saved", "s_endpgm_ordered_ps_done"):
        return lambda b, rt: END
    return illegal(inst, "unimplemented instruction")
