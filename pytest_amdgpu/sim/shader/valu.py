"""Compile vector ALU instructions (VOP1/VOP2/VOPC/VOP3/VOP3P/VOPD, SDWA, DPP) into handlers.

A handler is `h(batch, rt) -> None`: it reads its sources for all WxL lanes of the batch,
applies the operation from valu_ops.py and writes the result under EXEC.  Operand readers
return numpy arrays shaped (W, L) (VGPRs), (W, 1) (SGPRs and per-wave values, broadcast) or
numpy scalars (inline constants and literals), so scalar sources cost nothing extra.

Operand rules (AMD ISA guides, confirmed against LLVM): inline constants take the operand's
size (f16 / f32 / f64 bit patterns for 240..248); a 32-bit literal is the low half of a 16-bit
operand, the high half of an f64 operand and zero-extended for a 64-bit integer operand; VOP3
abs/neg apply to float operands, clamp/omod to float results; op_sel selects 16-bit halves;
SDWA selects bytes/words of sources and destination; DPP permutes src0 across lanes.
On GFX9 a 16-bit result zeroes the high half of the VGPR; on GFX11 the other half is kept
(LLVM's GCNSubtarget::zeroesHigh16BitsOfDest).
"""

from __future__ import annotations

import re

import numpy as np

from . import valu_ops as vo
from .decoder import Inst
from .errors import ShaderException

U16, U32, U64 = np.uint16, np.uint32, np.uint64
F16, F32, F64 = np.float16, np.float32, np.float64

_INLINE_F32 = {240: 0x3F000000, 241: 0xBF000000, 242: 0x3F800000, 243: 0xBF800000, 244: 0x40000000,
               245: 0xC0000000, 246: 0x40800000, 247: 0xC0800000, 248: 0x3E22F983}
_INLINE_F16 = {240: 0x3800, 241: 0xB800, 242: 0x3C00, 243: 0xBC00, 244: 0x4000, 245: 0xC000,
               246: 0x4400, 247: 0xC400, 248: 0x3118}
_INLINE_F64 = {240: 0x3FE0000000000000, 241: 0xBFE0000000000000, 242: 0x3FF0000000000000,
               243: 0xBFF0000000000000, 244: 0x4000000000000000, 245: 0xC000000000000000,
               246: 0x4010000000000000, 247: 0xC010000000000000, 248: 0x3FC45F306DC9C882}


class Ctx:
    """Compile-time facts for one target and wave size."""

    def __init__(self, target, lanes: int, *, lds_aperture: int = 1 << 48,
                 private_aperture: int = 2 << 48) -> None:
        self.target = target
        self.gfx11 = target.family == "gfx11"
        self.gfx940_memory_encoding = target.gfx940_memory_encoding
        self.L = lanes
        self.nw = lanes // 32
        self.m0 = 125 if self.gfx11 else 124
        self.null = 124 if self.gfx11 else -1
        self.lds_aperture = lds_aperture
        self.private_aperture = private_aperture
        self.zero_hi16 = not self.gfx11
        lane = np.arange(lanes, dtype=np.int64)
        self.mb_lo = np.where(lane < 32, (np.int64(1) << np.minimum(lane, 31)) - 1, 0xFFFFFFFF).astype(U32)[None, :]
        self.mb_hi = np.where(lane >= 32, (np.int64(1) << np.maximum(lane - 32, 0)) - 1, 0).astype(U32)[None, :]


def illegal(inst: Inst, why: str):
    """Handler for an instruction the core cannot execute: raises when (and only if) reached."""
    def h(b, rt):
        raise ShaderException("illegal_instruction", pc=inst.pc, mnemonic=inst.name, encoding=inst.encoding,
                              message=f"{why}: {rt.render(inst)} at PC 0x{inst.pc:x} (encoding {inst.encoding}, "
                                      f"target {rt.target.name})")
    h.unimplemented = why
    return h


# ------------------------------------------------------------------------------------------------
# source operands

def const_value(ctx: Ctx, val: int, bits: int, fp: bool, literal: int | None) -> int | None:
    """Storage bits of a constant 9-bit operand encoding, or None if `val` is not a constant."""
    mask = (1 << bits) - 1
    if 128 <= val <= 192:
        return val - 128
    if 193 <= val <= 208:
        return (192 - val) & mask
    if 240 <= val <= 248:
        return {16: _INLINE_F16, 32: _INLINE_F32, 64: _INLINE_F64}[bits][val]
    if val == 255:
        lit = literal or 0
        if bits == 64:
            return lit << 32 if fp else lit
        return lit & mask
    if 235 <= val <= 238:
        # src_shared_base / _limit, src_private_base / _limit: the aperture address as a 64-bit
        # operand, its upper half as a 32-bit one (what LLVM's addrspacecast code reads)
        base = ctx.lds_aperture if val in (235, 236) else ctx.private_aperture
        if val in (236, 238):
            base += 0xFFFFFFFF
        return base & 0xFFFFFFFFFFFFFFFF if bits == 64 else (base >> 32) & 0xFFFFFFFF
    if val == 239:
        return 0
    if val == ctx.null:
        return 0
    return None


_STORE = {16: U16, 32: U32, 64: U64}


def raw_reader(ctx: Ctx, val: int, bits: int, fp: bool, literal: int | None, *, hi: bool = False,
               t16_e32: bool = False):
    """Reader of the storage bits of a source: ('const', np scalar) or ('fn', callable)."""
    c = const_value(ctx, val, bits, fp, literal)
    if c is not None:
        if bits == 16 and hi:
            c = (c >> 16) & 0xFFFF if c > 0xFFFF else c
        return "const", _STORE[bits](c)
    if val >= 256:
        r = val - 256
        if bits == 16 and t16_e32 and r >= 128:
            r -= 128
            hi = True
        if bits == 32:
            return "fn", lambda b: b.v[r]
        if bits == 64:
            return "fn", lambda b: b.v[r].astype(U64) | (b.v[r + 1].astype(U64) << U64(32))
        if hi:
            return "fn", lambda b: (b.v[r] >> U32(16)).astype(U16)
        return "fn", lambda b: b.v[r].astype(U16)
    if val == 253:
        return "fn", lambda b: b.scc[:, None].astype(U32)
    if val == 251:
        n = ctx.nw
        return "fn", lambda b: (~b.s[:, 106:106 + n].any(axis=1, keepdims=True)).astype(U32)
    if val == 252:
        n = ctx.nw
        return "fn", lambda b: (~b.s[:, 126:126 + n].any(axis=1, keepdims=True)).astype(U32)
    if val < 128:
        i = val
        if bits == 32:
            return "fn", lambda b: b.s[:, i:i + 1]
        if bits == 64:
            return "fn", lambda b: b.s[:, i:i + 2].view(U64)
        if hi:
            return "fn", lambda b: (b.s[:, i:i + 1] >> U32(16)).astype(U16)
        return "fn", lambda b: b.s[:, i:i + 1].astype(U16)
    return "bad", None


def typed_reader(ctx: Ctx, inst: Inst, val: int, typ: str, *, abs_: bool = False, neg: bool = False,
                 hi: bool = False, sdwa: tuple[int, bool] | None = None, t16_e32: bool = False):
    """Reader returning values of type `typ` (see valu_ops.DTYPES) with modifiers applied."""
    bits = vo.BITS[typ]
    dt = vo.DTYPES[typ]
    fp = typ.startswith("f")
    if sdwa is not None:
        sel, sext = sdwa
        kind, fn = raw_reader(ctx, val, 32, False, inst.literal)
        base = fn if kind == "fn" else (lambda b, c=fn: c)
        if kind == "const":
            cval = fn
            base = lambda b: cval  # noqa: E731
        sh, width = ((8 * sel, 8) if sel < 4 else (16 * (sel - 4), 16) if sel < 6 else (0, 32))

        def sel_fn(b):
            x = np.asarray(base(b), dtype=U32)
            if width == 32:
                return x
            y = (x >> U32(sh)) & U32((1 << width) - 1)
            if sext:
                y = ((y << U32(32 - width)).astype(np.int32) >> np.int32(32 - width)).astype(U32)
            return y

        if bits == 16:
            def get(b):
                return sel_fn(b).astype(U16).view(dt)
        elif bits == 32:
            def get(b):
                return sel_fn(b).view(dt)
        else:
            return None
        return _mods(get, fp, abs_, neg)
    kind, fn = raw_reader(ctx, val, bits, fp, inst.literal, hi=hi, t16_e32=t16_e32)
    if kind == "bad":
        return None
    if kind == "const":
        v = np.asarray(fn).view(dt)[()]
        if fp:
            if abs_:
                v = np.abs(v)
            if neg:
                v = -v
        elif typ.startswith("b") and (abs_ or neg):
            v = _bit_mods(np.asarray(v), bits, abs_, neg)[()]
        return ("const", v)
    if dt in (U32, U16, U64):
        get = fn
    else:
        def get(b, f=fn, d=dt):
            return f(b).view(d)
    if typ.startswith("b") and (abs_ or neg):
        # untyped operands (v_cndmask_b32, moves) take abs/neg as sign-bit operations
        return lambda b: _bit_mods(get(b), bits, abs_, neg)
    return _mods(get, fp, abs_, neg)


def _bit_mods(x, bits: int, abs_: bool, neg: bool):
    dt = {16: U16, 32: U32, 64: U64}[bits]
    sign = dt(1 << (bits - 1))
    x = np.asarray(x, dtype=dt)
    if abs_:
        x = x & ~sign
    if neg:
        x = x ^ sign
    return x


def _mods(get, fp: bool, abs_: bool, neg: bool):
    if not fp or not (abs_ or neg):
        return get
    if abs_ and neg:
        return lambda b: -np.abs(get(b))
    if abs_:
        return lambda b: np.abs(get(b))
    return lambda b: -get(b)


def as_fn(r):
    """Normalise a reader to a callable (constants become closures)."""
    if isinstance(r, tuple):
        v = r[1]
        return lambda b: v
    return r


# ------------------------------------------------------------------------------------------------
# destinations

def to_storage(res, typ: str):
    dt = vo.DTYPES[typ]
    r = np.asarray(res)
    if r.dtype != dt:
        r = r.astype(dt)
    bits = vo.BITS[typ]
    if bits == 32:
        return r.view(U32)
    if bits == 16:
        return r.view(U16)
    return r.view(U64)


def vgpr_writer(ctx: Ctx, d: int, typ: str, *, hi: bool = False, acc: bool = False, t16_e32: bool = False):
    """Writer(b, typed_result, mask=None) for a VGPR destination under EXEC (or `mask`)."""
    bits = vo.BITS[typ]
    if bits == 16 and t16_e32 and d >= 128:
        d -= 128
        hi = True
    reg = "a" if acc else "v"

    if bits == 32:
        def w(b, res, mask=None):
            dst = getattr(b, reg)[d]
            val = to_storage(res, typ)
            m = b.em if mask is None else mask
            if mask is None and b.exec_full:
                dst[...] = val
            else:
                np.copyto(dst, val, where=m)
        return w
    if bits == 64:
        def w(b, res, mask=None):
            regs = getattr(b, reg)
            val = to_storage(res, typ)
            lo = (val & U64(0xFFFFFFFF)).astype(U32)
            hi_ = (val >> U64(32)).astype(U32)
            if mask is None and b.exec_full:
                regs[d][...] = lo
                regs[d + 1][...] = hi_
            else:
                m = b.em if mask is None else mask
                np.copyto(regs[d], lo, where=m)
                np.copyto(regs[d + 1], hi_, where=m)
        return w
    zero_hi = ctx.zero_hi16

    def w(b, res, mask=None):
        dst = getattr(b, reg)[d]
        val = to_storage(res, typ).astype(U32)
        if hi:
            new = (dst & U32(0xFFFF)) | (val << U32(16))
        elif zero_hi:
            new = val
        else:
            new = (dst & U32(0xFFFF0000)) | val
        if mask is None and b.exec_full:
            dst[...] = new
        else:
            np.copyto(dst, new, where=b.em if mask is None else mask)
    return w


def sdwa_writer(ctx: Ctx, d: int, typ: str, dst_sel: int, unused: int):
    """SDWA destination: write the selected byte/word, pad/sign-extend/preserve the rest."""
    if dst_sel >= 6:
        return vgpr_writer(ctx, d, typ)
    sh, width = (8 * dst_sel, 8) if dst_sel < 4 else (16 * (dst_sel - 4), 16)
    fmask = ((1 << width) - 1) << sh

    def w(b, res, mask=None):
        dst = b.v[d]
        val = to_storage(res, typ).astype(U32) & U32((1 << width) - 1)
        field = val << U32(sh)
        if unused == 2:       # preserve
            new = (dst & U32(~fmask & 0xFFFFFFFF)) | field
        elif unused == 1:     # sign-extend the field upward, zero below
            sign = (val >> U32(width - 1)) & U32(1)
            upper = np.where(sign != 0, U32((0xFFFFFFFF << (sh + width)) & 0xFFFFFFFF), U32(0))
            new = field | upper
        else:
            new = field
        np.copyto(dst, new, where=b.em if mask is None else mask)
    return w


def mask_writer(ctx: Ctx, sd: int):
    """Write a (W, L) lane mask to SGPR(s) `sd` (VCC or an SGPR pair); inactive lanes read 0."""
    if sd == ctx.null:
        return lambda b, m: None
    L = ctx.L

    def w(b, m):
        m = np.broadcast_to(m, (b.W, L))
        if not b.exec_full:
            m = m & b.em
        b.write_mask(sd, np.ascontiguousarray(m))
    return w


# ------------------------------------------------------------------------------------------------
# DPP

def dpp_lanes(ctx: Ctx, ctrl: int, L: int, gfx11: bool):
    """Source lane per lane (int array) and a validity mask for a DPP16 control value."""
    lane = np.arange(L)
    row = lane // 16 * 16
    pos = lane % 16
    if ctrl <= 0xFF:
        sel = np.array([(ctrl >> (2 * i)) & 3 for i in range(4)])
        return (lane & ~3) | sel[lane & 3], np.ones(L, bool)
    if 0x101 <= ctrl <= 0x10F:
        n = ctrl & 0xF
        src = pos + n
        return row + np.minimum(src, 15), src < 16
    if 0x111 <= ctrl <= 0x11F:
        n = ctrl & 0xF
        src = pos - n
        return row + np.maximum(src, 0), src >= 0
    if 0x121 <= ctrl <= 0x12F:
        n = ctrl & 0xF
        return row + (pos - n) % 16, np.ones(L, bool)
    if ctrl == 0x140:
        return row + 15 - pos, np.ones(L, bool)
    if ctrl == 0x141:
        return (lane & ~7) + 7 - (lane & 7), np.ones(L, bool)
    if not gfx11 and ctrl == 0x142:          # row_bcast:15: lane 15 of the previous row
        valid = lane >= 16
        return np.where(valid, (lane // 16) * 16 - 1, lane), valid
    if not gfx11 and ctrl == 0x143:
        valid = lane >= 32
        return np.where(valid, 31, lane), valid
    if 0x150 <= ctrl <= 0x15F:
        n = ctrl & 0xF
        return row + n, np.ones(L, bool)
    if gfx11 and 0x160 <= ctrl <= 0x16F:
        n = ctrl & 0xF
        return row + (pos ^ n), np.ones(L, bool)
    return None, None


def _wave_shift(ctrl: int, L: int):
    lane = np.arange(L)
    if ctrl == 0x130:       # wave_shl:1 — lane i reads lane i+1
        return np.minimum(lane + 1, L - 1), lane + 1 < L
    if ctrl == 0x134:       # wave_rol:1
        return (lane + 1) % L, np.ones(L, bool)
    if ctrl == 0x138:       # wave_shr:1 — lane i reads lane i-1
        return np.maximum(lane - 1, 0), lane >= 1
    return (lane - 1) % L, np.ones(L, bool)   # wave_ror:1


def make_dpp(ctx: Ctx, inst: Inst):
    """(src0 transform, write-mask fn) for a DPP16 / DPP8 instruction, or None if unsupported."""
    L = ctx.L
    w = inst.ext_word
    if inst.ext == "dpp8":
        sel = [(w >> (8 + 3 * i)) & 7 for i in range(8)]
        lane = np.arange(L)
        src = (lane & ~7) | np.array(sel)[lane & 7]
        valid = np.ones(L, bool)
        # DPP8 has no bound_ctrl: a source lane that is inactive reads as zero unless FI is set
        fi = bool(inst.f.get("fi8"))
        bound = True
        row_mask = bank_mask = 0xF
    else:
        ctrl = (w >> 8) & 0x1FF
        if not ctx.gfx11 and ctrl in (0x130, 0x134, 0x138, 0x13C):
            src, valid = _wave_shift(ctrl, L)
        else:
            src, valid = dpp_lanes(ctx, ctrl, L, ctx.gfx11)
        if src is None:
            return None
        bound = bool(w >> 19 & 1)
        fi = bool(w >> 18 & 1) and ctx.gfx11
        row_mask = (w >> 28) & 0xF
        bank_mask = (w >> 24) & 0xF
    lane = np.arange(L)
    enabled = np.array([(row_mask >> (i // 16)) & 1 and (bank_mask >> ((i % 16) // 4)) & 1 for i in lane], bool)
    src = np.asarray(src)
    valid = np.asarray(valid)

    def permute(b, x, exec_m):
        """x (W, L) storage -> permuted; also returns the lanes whose source is usable."""
        x = np.broadcast_to(x, (b.W, L))
        y = x[:, src]
        ok = np.broadcast_to(valid, (b.W, L))
        if not fi:
            ok = ok & exec_m[:, src]
        if bound:
            y = np.where(ok, y, 0).astype(y.dtype)
            wmask = exec_m & enabled
        else:
            wmask = exec_m & enabled & ok
        return y, wmask

    return permute


# ------------------------------------------------------------------------------------------------
# main entry

def compile_valu(ctx: Ctx, inst: Inst):
    base = inst.base
    if inst.fmt == "VOPD":
        return compile_vopd(ctx, inst)
    if inst.fmt == "VOP3P":
        return compile_vop3p(ctx, inst)
    o = vo.lookup(base)
    if o is None:
        return illegal(inst, "unimplemented instruction")
    kind = o.kind
    if kind == "nop":
        return None
    try:
        return _compile(ctx, inst, o)
    except _Unsupported as e:
        return illegal(inst, str(e))


class _Unsupported(Exception):
    pass


def _src_fields(inst: Inst) -> list[str]:
    names = [f for f, _w, _c in inst.operands if f in ("src0", "src1", "src2", "vsrc1", "literal")]
    return names


def _compile(ctx: Ctx, inst: Inst, o: vo.Op):
    f = inst.f
    fmt = inst.fmt
    kind = o.kind
    vop3 = fmt == "VOP3"
    sdwa = inst.ext == "sdwa"
    dpp = inst.ext in ("dpp", "dpp8")
    t16 = ctx.gfx11 and fmt in ("VOP1", "VOP2", "VOPC")
    order = _src_fields(inst)
    # sources in operand order (as printed): literal K of madak/madmk sits in its printed place
    srcs = []
    abs_bits = f.get("abs", 0) if vop3 else 0
    neg_bits = f.get("neg", 0) if vop3 else 0
    opsel = f.get("opsel", 0) if vop3 else 0
    if vop3 and any(o_[0] == "sdst" for o_ in inst.operands):
        abs_bits = 0
    sdwa_sel = {}
    if sdwa:
        ew = inst.ext_word
        sdwa_sel = {0: ((ew >> 16) & 7, bool(ew >> 19 & 1)), 1: ((ew >> 24) & 7, bool(ew >> 27 & 1))}
        abs_bits = (ew >> 21 & 1) | (ew >> 29 & 1) << 1
        neg_bits = (ew >> 20 & 1) | (ew >> 28 & 1) << 1
    if inst.ext == "dpp":
        ew = inst.ext_word
        abs_bits = (ew >> 21 & 1) | (ew >> 23 & 1) << 1 | (abs_bits if vop3 else 0)
        neg_bits = (ew >> 20 & 1) | (ew >> 22 & 1) << 1 | (neg_bits if vop3 else 0)
    nsrc = len(o.srcs)
    for idx, name in enumerate(order):
        if idx >= nsrc:
            break
        typ = o.srcs[idx]
        if name == "literal":
            r = ("const", np.asarray(_STORE[vo.BITS[typ]](inst.literal & ((1 << vo.BITS[typ]) - 1)
                                                          if vo.BITS[typ] < 64 else inst.literal)).view(vo.DTYPES[typ])[()])
        else:
            val = f["vsrc1"] if name == "vsrc1" else f[name]
            if name == "vsrc1":
                val = (val & 0xFF) if val & 0x200 else (val | 0x100)
            k = idx
            r = typed_reader(ctx, inst, val, typ, abs_=bool(abs_bits >> k & 1), neg=bool(neg_bits >> k & 1),
                             hi=bool(opsel >> k & 1) and vo.BITS[typ] == 16,
                             sdwa=sdwa_sel.get(k) if sdwa else None, t16_e32=t16)
            if r is None:
                raise _Unsupported(f"unsupported operand encoding {val}")
        srcs.append(r)
    if len(srcs) < nsrc:
        raise _Unsupported("operand layout not understood")
    # destination
    clamp = bool(f.get("clamp")) if vop3 else (bool(inst.ext_word >> 13 & 1) if sdwa else False)
    omod = f.get("omod", 0) if vop3 else ((inst.ext_word >> 14) & 3 if sdwa else 0)
    dpp_fn = make_dpp(ctx, inst) if dpp else None
    if dpp and dpp_fn is None:
        raise _Unsupported("unsupported DPP control")
    # the VOP2/VOP3 implicit/explicit lane-mask operands
    sdst = None
    cin = None
    if kind in ("carry_out", "carry_inout"):
        sdst = f["sdst"] if vop3 else 106
        if kind == "carry_inout":
            cin = f["src2"] if vop3 else 106
    if kind in ("cndmask", "vcc_in"):
        cin = (f["src2"] if vop3 else 106) if kind == "cndmask" else 106
    if kind in ("cmp", "cmpx"):
        return _compile_cmp(ctx, inst, o, srcs, dpp_fn, sdwa)
    if kind in ("readlane", "readfirstlane", "writelane", "mbcnt_lo", "mbcnt_hi"):
        return _compile_lane(ctx, inst, o, srcs, kind)
    if kind in ("acc_read", "acc_write", "acc_mov"):
        return _compile_acc(ctx, inst, kind)
    if kind == "movrel":
        return _compile_movrel(ctx, inst)
    if kind == "swap":
        return _compile_swap(ctx, inst)
    if kind == "permlane":
        return _compile_permlane(ctx, inst, srcs)
    d = f.get("vdst", 0)
    dtyp = o.dst
    if sdwa and fmt != "VOPC":
        ew = inst.ext_word
        writer = sdwa_writer(ctx, d, dtyp, (ew >> 8) & 7, (ew >> 11) & 3)
    else:
        writer = vgpr_writer(ctx, d, dtyp, hi=bool(opsel >> 3 & 1) and vo.BITS[dtyp] == 16 and vop3,
                             t16_e32=t16)
    fn = o.fn
    if clamp and not dtyp.startswith("f") and vo.BITS[dtyp] <= 32 and _INT_SAT.match(inst.base):
        fn = _saturating(fn, dtyp, kind, "sub" in inst.base)
    post = _output_mods(dtyp, clamp, omod, o.clamp)
    fns = [as_fn(r) for r in srcs]
    if kind == "mac":
        acc = typed_reader(ctx, inst, 256 + d, dtyp)
        fns.append(as_fn(acc))
    if kind == "vcc_in" or kind == "cndmask" or kind == "carry_inout":
        cidx = cin
        fns.append(lambda b: b.mask_of(cidx))
    if dpp_fn is not None:
        inner0 = fns[0]

        def fns0(b):
            return dpp_fn(b, inner0(b), b.em)
    else:
        fns0 = None
    mw = mask_writer(ctx, sdst) if sdst is not None else None
    n = len(fns)

    if kind in ("carry_out", "carry_inout"):
        def h(b, rt):
            args = [g(b) for g in fns]
            res, carry = fn(*args)
            if post is not None:
                res = post(res)
            writer(b, res)
            if mw is not None:
                mw(b, carry)
        return h
    if fns0 is not None:
        rest = fns[1:]

        def h(b, rt):
            x, wmask = fns0(b)
            res = fn(x, *[g(b) for g in rest])
            if post is not None:
                res = post(res)
            writer(b, res, wmask)
        return h
    if n == 1:
        g0 = fns[0]

        def h(b, rt):
            res = fn(g0(b))
            if post is not None:
                res = post(res)
            writer(b, res)
    elif n == 2:
        g0, g1 = fns

        def h(b, rt):
            res = fn(g0(b), g1(b))
            if post is not None:
                res = post(res)
            writer(b, res)
    elif n == 3:
        g0, g1, g2 = fns

        def h(b, rt):
            res = fn(g0(b), g1(b), g2(b))
            if post is not None:
                res = post(res)
            writer(b, res)
    else:
        def h(b, rt):
            res = fn(*[g(b) for g in fns])
            if post is not None:
                res = post(res)
            writer(b, res)
    return h


_INT_SAT = re.compile(r"^v_(add|sub|subrev|add3|mad|mul_lo_u16|dot)")
_INT_RANGE = {"u32": (0, 0xFFFFFFFF), "i32": (-(1 << 31), (1 << 31) - 1), "u16": (0, 0xFFFF),
              "i16": (-(1 << 15), (1 << 15) - 1), "b32": (0, 0xFFFFFFFF), "b16": (0, 0xFFFF)}


def _saturating(fn, dtyp: str, kind: str, sub: bool):
    """Integer clamp: the result saturates to the destination type's range instead of wrapping
    (carry-out forms: an add that carries gives all ones, a subtract that borrows gives 0)."""
    lo, hi = _INT_RANGE[dtyp]
    dt = vo.DTYPES[dtyp]
    if kind in ("carry_out", "carry_inout"):
        def cfn(*args):
            res, carry = fn(*args)
            return np.where(carry, dt(0) if sub else dt(hi), res).astype(dt), carry
        return cfn

    def sfn(*args):
        r = fn(*[np.asarray(a).astype(np.int64) for a in args])
        return np.clip(r, lo, hi).astype(dt)
    return sfn


def _output_mods(dtyp: str, clamp: bool, omod: int, iclamp: str):
    fp = dtyp.startswith("f")
    if not fp:
        if clamp and iclamp == "u32":
            return None  # saturation handled below for add (rare): keep wrap-around
        return None
    dt = vo.DTYPES[dtyp]
    scale = {0: None, 1: 2.0, 2: 4.0, 3: 0.5}[omod]
    if not clamp and scale is None:
        return None

    def post(r):
        r = np.asarray(r, dtype=dt)
        if scale is not None:
            r = (r * dt(scale)).astype(dt)
        if clamp:
            r = np.where(np.isnan(r), dt(0), np.clip(r, dt(0), dt(1))).astype(dt)
        return r
    return post


def _compile_cmp(ctx: Ctx, inst: Inst, o: vo.Op, srcs, dpp_fn, sdwa: bool):
    f = inst.f
    fn = o.fn
    fns = [as_fn(r) for r in srcs]
    g0, g1 = fns
    cmpx = o.kind == "cmpx"
    if inst.fmt == "VOP3":
        sd = f["vdst"]
    elif sdwa and inst.ext_word >> 15 & 1:
        sd = (inst.ext_word >> 8) & 0x7F
    else:
        sd = 106
    write_sd = not (cmpx and ctx.gfx11)       # GFX11 v_cmpx writes EXEC only
    mw = mask_writer(ctx, sd) if write_sd else None
    L = ctx.L

    def h(b, rt):
        if dpp_fn is not None:
            x, wmask = dpp_fn(b, g0(b), b.em)
            m = np.broadcast_to(fn(x, g1(b)), (b.W, L)) & wmask
        else:
            m = np.broadcast_to(fn(g0(b), g1(b)), (b.W, L))
            if not b.exec_full:
                m = m & b.em
        m = np.ascontiguousarray(m)
        if mw is not None:
            mw(b, m)
        if cmpx:
            b.set_exec(m)
    return h


def _compile_lane(ctx: Ctx, inst: Inst, o: vo.Op, srcs, kind: str):
    f = inst.f
    L = ctx.L
    fns = [as_fn(r) for r in srcs]
    if kind in ("readfirstlane", "readlane"):
        sd = f["vdst"]
        g0 = fns[0]
        if sd == ctx.null:
            return lambda b, rt: None
        if kind == "readfirstlane":        # the lowest active lane; lane 0 when EXEC is zero
            def lane(b):
                return np.argmax(b.em, axis=1)
        else:                              # the lane SRC1 names (any lane, active or not)
            g1 = fns[1]

            def lane(b):
                return (np.broadcast_to(g1(b), (b.W, 1))[:, 0] & U32(L - 1)).astype(np.int64)

        def h(b, rt):
            b.s[:, sd] = np.broadcast_to(g0(b), (b.W, L))[np.arange(b.W), lane(b)]
            if sd in (126, 127):
                b.exec_changed()
            else:
                b.scalar_written()
        return h
    if kind == "writelane":
        d = f["vdst"]
        g0, g1 = fns

        def h(b, rt):
            val = np.broadcast_to(g0(b), (b.W, 1))[:, 0]
            ln = (np.broadcast_to(g1(b), (b.W, 1))[:, 0] & U32(L - 1)).astype(np.int64)
            b.v[d][np.arange(b.W), ln] = val
        return h
    d = f["vdst"]
    g0, g1 = fns
    writer = vgpr_writer(ctx, d, "u32")
    lanemask = ctx.mb_lo if kind == "mbcnt_lo" else ctx.mb_hi

    def h(b, rt):
        m = np.asarray(g0(b), dtype=U32)
        writer(b, np.bitwise_count(m & lanemask).astype(U32) + g1(b))
    return h


def _compile_movrel(ctx: Ctx, inst: Inst):
    """v_movrels / v_movreld / v_movrelsd: VGPR operands indexed per wave by M0."""
    f = inst.f
    d, s0 = f["vdst"], f["src0"]
    m0 = ctx.m0
    name = inst.base
    src_rel = name in ("v_movrels_b32", "v_movrelsd_b32", "v_movrelsd_2_b32")
    dst_rel = name in ("v_movreld_b32", "v_movrelsd_b32", "v_movrelsd_2_b32")
    two = name == "v_movrelsd_2_b32"
    if src_rel and s0 < 256:
        return illegal(inst, "v_movrel source must be a VGPR")
    reader = None if src_rel else as_fn(typed_reader(ctx, inst, s0, "u32"))

    def h(b, rt):
        rows = np.arange(b.W)
        m = b.s[:, m0].astype(np.int64)
        so = (m & 0x3FF) if two else m
        do = ((m >> 16) & 0x3FF) if two else m
        val = b.v[(s0 - 256) + so, rows] if src_rel else np.broadcast_to(reader(b), (b.W, b.L))
        di = d + do if dst_rel else np.full(b.W, d)
        cur = b.v[di, rows]
        b.v[di, rows] = val if b.exec_full else np.where(b.em, val, cur)
    return h


def _compile_swap(ctx: Ctx, inst: Inst):
    f = inst.f
    d, s0 = f["vdst"], f["src0"] - 256

    def h(b, rt):
        a, c = b.v[d].copy(), b.v[s0].copy()
        np.copyto(b.v[d], c, where=b.em)
        np.copyto(b.v[s0], a, where=b.em)
    return h


def _compile_permlane(ctx: Ctx, inst: Inst, srcs):
    """v_permlane16 (within each row of 16 lanes) / v_permlanex16 (from the other row), the lane
    selects taken from the 4-bit fields of src1 (lanes 0-7) and src2 (lanes 8-15)."""
    f = inst.f
    g0, g1, g2 = (as_fn(r) for r in srcs)
    d = f["vdst"]
    cross = inst.base == "v_permlanex16_b32"
    fi = bool(f["opsel"] & 1)
    L = ctx.L
    lane = np.arange(L)

    def h(b, rt):
        x = np.broadcast_to(g0(b), (b.W, L))
        lo = np.broadcast_to(np.asarray(g1(b), U32), (b.W, 1)).astype(np.int64)
        hi = np.broadcast_to(np.asarray(g2(b), U32), (b.W, 1)).astype(np.int64)
        pos = lane % 16
        shift = (4 * (pos % 8))[None, :]
        sel = np.where(pos[None, :] < 8, lo >> shift, hi >> shift) & 15
        row = lane // 16
        src_row = (row ^ 1) if cross else row
        src = src_row[None, :] * 16 + sel
        src = np.minimum(src, L - 1)
        rows = np.arange(b.W)[:, None]
        val = x[rows, src]
        ok = np.ones_like(val, dtype=bool) if fi else b.em[rows, src]
        np.copyto(b.v[d], np.where(ok, val, b.v[d]), where=b.em)
    return h


def _compile_acc(ctx: Ctx, inst: Inst, kind: str):
    f = inst.f
    d = f["vdst"]
    s0 = f["src0"]
    if kind == "acc_read":          # v_accvgpr_read vD, aS
        src = s0 - 256

        def h(b, rt):
            if b.exec_full:
                b.v[d][...] = b.a[src]
            else:
                np.copyto(b.v[d], b.a[src], where=b.em)
        return h
    if kind == "acc_mov":
        src = s0 - 256

        def h(b, rt):
            np.copyto(b.a[d], b.a[src], where=b.em)
        return h
    r = as_fn(typed_reader(ctx, inst, s0, "u32"))

    def h(b, rt):
        np.copyto(b.a[d], np.broadcast_to(r(b), b.a[d].shape), where=b.em)
    return h


# ------------------------------------------------------------------------------------------------
# VOP3P (packed 16-bit / 32-bit pairs, mixed precision)

def compile_vop3p(ctx: Ctx, inst: Inst):
    base = inst.base
    if base in vo.PK:
        typ, fn = vo.PK[base]
        return _compile_pk(ctx, inst, typ, fn)
    if base.startswith("v_fma_mix"):
        return _compile_mix(ctx, inst)
    parts = base.split("_")
    if base.startswith("v_dot2") and len(parts) == 4 and parts[-1] in ("f16", "i16", "u16") \
            and parts[-2] in ("f32", "i32", "u32"):
        return _compile_dot2(ctx, inst)
    m = re.match(r"^v_dot([48])_([iu])32_(i|u|iu)(8|4)$", base)
    if m:
        return _compile_dotn(ctx, inst, int(m.group(4)), m.group(2) == "i", m.group(3))
    o = vo.lookup(base)
    if o is not None and o.kind == "alu":
        return _compile(ctx, inst, o)
    if o is not None and o.kind in ("acc_read", "acc_write", "acc_mov"):
        return _compile_acc(ctx, inst, o.kind)
    return illegal(inst, "unimplemented instruction")


def _pk_half_reader(ctx: Ctx, inst: Inst, k: int, typ: str, hi: bool, neg: bool):
    f = inst.f
    val = f[("src0", "src1", "src2")[k]]
    bits = vo.BITS[typ]
    dt = vo.DTYPES[typ]
    if bits == 32:       # halves of a 64-bit register pair
        c = const_value(ctx, val, 32, typ.startswith("f"), inst.literal)
        if c is not None:
            v = np.asarray(U32(c)).view(dt)[()]
            v = -v if neg else v
            return lambda b: v
        if val >= 256:
            r = val - 256 + (1 if hi else 0)
            get = lambda b: b.v[r].view(dt)  # noqa: E731
        else:
            i = val + (1 if hi else 0)
            get = lambda b: b.s[:, i:i + 1].view(dt)  # noqa: E731
        return (lambda b: -get(b)) if neg else get
    c = const_value(ctx, val, 16, typ.startswith("f"), inst.literal)
    if c is not None:
        if val == 255:
            c = ((inst.literal or 0) >> (16 if hi else 0)) & 0xFFFF
        v = np.asarray(U16(c)).view(dt)[()]
        if neg and typ.startswith("f"):
            v = -v
        return lambda b: v
    kind, fn = raw_reader(ctx, val, 16, False, inst.literal, hi=hi)
    if kind != "fn":
        return None

    def get(b):
        return fn(b).view(dt)
    if neg and typ.startswith("f"):
        return lambda b: -get(b)
    return get


def _compile_pk(ctx: Ctx, inst: Inst, typ: str, fn):
    f = inst.f
    n = vo.PK_ARITY.get(inst.base, 2)
    if inst.base == "v_pk_mov_b32":
        n = 2
    opsel = f["opsel"]
    opsel_hi = f["opsel_hi"] | f["opsel_hi2"] << 2
    neg_lo, neg_hi = f["neg"], f["neg_hi"]
    lo = [_pk_half_reader(ctx, inst, k, typ, bool(opsel >> k & 1), bool(neg_lo >> k & 1)) for k in range(n)]
    hi = [_pk_half_reader(ctx, inst, k, typ, bool(opsel_hi >> k & 1), bool(neg_hi >> k & 1)) for k in range(n)]
    if any(r is None for r in lo + hi):
        return illegal(inst, "unsupported operand")
    d = f["vdst"]
    bits = vo.BITS[typ]
    dt = vo.DTYPES[typ]
    clamp = bool(f["clamp"]) and typ.startswith("f")
    mov = inst.base == "v_pk_mov_b32"
    if f["clamp"] and not typ.startswith("f") and re.match(r"^v_pk_(add|sub|mad)", inst.base):
        fn = _saturating(fn, typ, "alu", False)

    def h(b, rt):
        if mov:
            rl, rh = lo[0](b), hi[1](b)
        else:
            rl = fn(*[g(b) for g in lo])
            rh = fn(*[g(b) for g in hi])
        rl = np.asarray(rl).astype(dt)
        rh = np.asarray(rh).astype(dt)
        if clamp:
            rl = np.clip(rl, dt(0), dt(1))
            rh = np.clip(rh, dt(0), dt(1))
        if bits == 32:
            a = np.broadcast_to(rl.view(U32), (b.W, ctx.L))
            c = np.broadcast_to(rh.view(U32), (b.W, ctx.L))
            np.copyto(b.v[d], a, where=b.em)
            np.copyto(b.v[d + 1], c, where=b.em)
        else:
            val = rl.view(U16).astype(U32) | (rh.view(U16).astype(U32) << U32(16))
            np.copyto(b.v[d], np.broadcast_to(val, (b.W, ctx.L)), where=b.em)
    return h


def _compile_mix(ctx: Ctx, inst: Inst):
    """v_fma_mix_f32 / v_fma_mixlo_f16 / v_fma_mixhi_f16: op_sel_hi picks f16 (1) or f32 (0)."""
    f = inst.f
    opsel = f["opsel"]
    opsel_hi = f["opsel_hi"] | f["opsel_hi2"] << 2
    readers = []
    for k in range(3):
        val = f[("src0", "src1", "src2")[k]]
        neg = bool(f["neg"] >> k & 1)
        absm = bool(f["neg_hi"] >> k & 1)
        if opsel_hi >> k & 1:
            r = typed_reader(ctx, inst, val, "f16", hi=bool(opsel >> k & 1), abs_=absm, neg=neg)
            g = as_fn(r)
            readers.append(lambda b, g=g: np.asarray(g(b)).astype(F32))
        else:
            r = typed_reader(ctx, inst, val, "f32", abs_=absm, neg=neg)
            readers.append(as_fn(r))
    d = f["vdst"]
    clamp = bool(f["clamp"])
    from . import numerics as nm
    if inst.base == "v_fma_mix_f32":
        w = vgpr_writer(ctx, d, "f32")

        def h(b, rt):
            r = nm.fma32(*[g(b) for g in readers])
            if clamp:
                r = np.clip(r, F32(0), F32(1))
            w(b, r)
        return h
    hi = inst.base.endswith("hi_f16")

    def h(b, rt):
        r = nm.fma32(*[g(b) for g in readers]).astype(F16)
        if clamp:
            r = np.clip(r, F16(0), F16(1))
        bits = np.asarray(r).view(U16).astype(U32)
        dst = b.v[d]
        new = (dst & U32(0xFFFF)) | (bits << U32(16)) if hi else (dst & U32(0xFFFF0000)) | bits
        np.copyto(dst, np.broadcast_to(new, dst.shape), where=b.em)
    return h


def _compile_dot2(ctx: Ctx, inst: Inst):
    base = inst.base
    parts = base.split("_")
    styp = parts[-1]
    dtyp = parts[-2]
    f = inst.f
    opsel = f["opsel"]
    opsel_hi = f["opsel_hi"] | f["opsel_hi2"] << 2
    lo = [_pk_half_reader(ctx, inst, k, styp, bool(opsel >> k & 1), bool(f["neg"] >> k & 1)) for k in range(2)]
    hi = [_pk_half_reader(ctx, inst, k, styp, bool(opsel_hi >> k & 1), bool(f["neg_hi"] >> k & 1)) for k in range(2)]
    if any(r is None for r in lo + hi):
        return illegal(inst, "unsupported operand")
    acc = as_fn(typed_reader(ctx, inst, f["src2"], dtyp if dtyp in vo.DTYPES else "f32"))
    w = vgpr_writer(ctx, f["vdst"], dtyp if dtyp in vo.DTYPES else "f32")
    big = F64 if styp.startswith("f") else np.int64

    def h(b, rt):
        s = (np.asarray(lo[0](b)).astype(big) * np.asarray(lo[1](b)).astype(big)
             + np.asarray(hi[0](b)).astype(big) * np.asarray(hi[1](b)).astype(big)
             + np.asarray(acc(b)).astype(big))
        w(b, s)
    return h


def _compile_dotn(ctx: Ctx, inst: Inst, bits: int, signed_acc: bool, sgn: str):
    """v_dot4_*8 / v_dot8_*4: packed 8- or 4-bit elements; the iu forms (GFX11) take each
    source's signedness from its neg bit. clamp saturates the 32-bit result."""
    f = inst.f
    sa = sb = sgn == "i"
    if sgn == "iu":
        sa, sb = bool(f["neg"] & 1), bool(f["neg"] >> 1 & 1)
    ra = typed_reader(ctx, inst, f["src0"], "b32")
    rb = typed_reader(ctx, inst, f["src1"], "b32")
    rc = typed_reader(ctx, inst, f["src2"], "i32" if signed_acc else "u32")
    if ra is None or rb is None or rc is None:
        return illegal(inst, "unsupported operand")
    ga, gb, gc = as_fn(ra), as_fn(rb), as_fn(rc)
    dtyp = "i32" if signed_acc else "u32"
    w = vgpr_writer(ctx, f["vdst"], dtyp)
    lo, hi = _INT_RANGE[dtyp]
    clamp = bool(f["clamp"])

    def h(b, rt):
        r = vo.dot_int(ga(b), gb(b), bits, sa, sb) + np.asarray(gc(b)).astype(np.int64)
        if clamp:
            r = np.clip(r, lo, hi)
        w(b, (r & 0xFFFFFFFF).astype(U32).view(vo.DTYPES[dtyp]))
    return h


# ------------------------------------------------------------------------------------------------
# VOPD (GFX11 dual issue): both halves read before either writes

_VOPD_OPS = {"v_dual_fmac_f32": "v_fmac_f32", "v_dual_fmaak_f32": "v_fmaak_f32",
             "v_dual_fmamk_f32": "v_fmamk_f32", "v_dual_mul_f32": "v_mul_f32",
             "v_dual_add_f32": "v_add_f32", "v_dual_sub_f32": "v_sub_f32",
             "v_dual_subrev_f32": "v_subrev_f32", "v_dual_mul_dx9_zero_f32": "v_mul_dx9_zero_f32",
             "v_dual_mov_b32": "v_mov_b32", "v_dual_cndmask_b32": "v_cndmask_b32",
             "v_dual_max_f32": "v_max_f32", "v_dual_min_f32": "v_min_f32",
             "v_dual_add_nc_u32": "v_add_nc_u32", "v_dual_lshlrev_b32": "v_lshlrev_b32",
             "v_dual_and_b32": "v_and_b32", "v_dual_dot2acc_f32_f16": "v_dot2acc_f32_f16"}


def compile_vopd(ctx: Ctx, inst: Inst):
    xname, yname = inst.name.split("::")
    f = inst.f
    halves = []
    for nm_, suf in ((xname, "x"), (yname, "y")):
        base = _VOPD_OPS.get(nm_)
        o = vo.lookup(base) if base else None
        if o is None:
            return illegal(inst, f"unimplemented dual operation {nm_}")
        srcs = []
        half_ops = []
        cur = "x"
        for fn, _w, _c in inst.operands:
            if fn == "::":
                cur = "y"
                continue
            if cur == suf:
                half_ops.append(fn)
        for fn in half_ops:
            if fn.startswith("vdst"):
                continue
            typ = o.srcs[len(srcs)] if len(srcs) < len(o.srcs) else "f32"
            if fn == "literal":
                lit = np.asarray(U32(inst.literal)).view(vo.DTYPES[typ])[()]
                srcs.append(lambda b, v=lit: v)
            elif fn.startswith("vsrc1"):
                srcs.append(as_fn(typed_reader(ctx, inst, 256 + f[fn], typ)))
            else:
                r = typed_reader(ctx, inst, f[fn], typ)
                if r is None:
                    return illegal(inst, "unsupported operand")
                srcs.append(as_fn(r))
        d = f["vdst" + suf]
        if o.kind == "mac":
            srcs.append(as_fn(typed_reader(ctx, inst, 256 + d, o.dst)))
        if o.kind == "cndmask":
            srcs.append(lambda b: b.mask_of(106))
        halves.append((o.fn, srcs, vgpr_writer(ctx, d, o.dst)))
    (fx, sx, wx), (fy, sy, wy) = halves

    def h(b, rt):
        rx = fx(*[g(b) for g in sx])
        ry = fy(*[g(b) for g in sy])
        wx(b, rx)
        wy(b, ry)
    return h
