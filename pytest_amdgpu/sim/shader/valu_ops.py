"""Vector ALU operation semantics, keyed by base mnemonic (the name without _e32/_e64/…).

Each `Op` names its destination and source types ("f32", "u32", "i32", "f16", "u16", "i16",
"f64", "u64", "i64", "b32", …) and a numpy function over typed arrays.  Readers in valu.py turn
registers, constants and modifiers into arrays of those types, so the functions here are pure
arithmetic.  Descriptions follow the AMD ISA reference guides (Vega/CDNA3 and RDNA3); names
are LLVM's for each target (e.g. v_add_u32 on GFX9 is v_add_nc_u32 on GFX11).
"""

from __future__ import annotations

import numpy as np

from . import numerics as nm

U16, U32, U64 = np.uint16, np.uint32, np.uint64
I16, I32, I64 = np.int16, np.int32, np.int64
F16, F32, F64 = np.float16, np.float32, np.float64

DTYPES = {"f32": F32, "i32": I32, "u32": U32, "b32": U32, "f16": F16, "i16": I16, "u16": U16,
          "b16": U16, "f64": F64, "i64": I64, "u64": U64, "b64": U64, "bool": bool}
BITS = {"f32": 32, "i32": 32, "u32": 32, "b32": 32, "f16": 16, "i16": 16, "u16": 16, "b16": 16,
        "f64": 64, "i64": 64, "u64": 64, "b64": 64}


class Op:
    """Semantics of one operation (see module docstring)."""

    __slots__ = ("clamp", "dst", "fn", "kind", "srcs")

    def __init__(self, dst: str | None, srcs: tuple[str, ...], fn, kind: str = "alu",
                 clamp: str = "") -> None:
        self.dst = dst
        self.srcs = srcs
        self.fn = fn
        self.kind = kind
        self.clamp = clamp


OPS: dict[str, Op] = {}


def op(name: str, dst, srcs, fn, kind: str = "alu", clamp: str = "") -> None:
    for n in name.split():
        OPS[n] = Op(dst, tuple(srcs), fn, kind, clamp)


def _u32(x):
    return np.asarray(x).astype(U32)


# ---------------------------------------------------------------- moves and bit operations
op("v_mov_b32 v_mov_fed_b32", "b32", ["b32"], lambda a: a)
op("v_mov_b64", "b64", ["b64"], lambda a: a)
op("v_mov_b16", "b16", ["b16"], lambda a: a)
op("v_not_b32", "b32", ["b32"], lambda a: ~a)
op("v_not_b16", "b16", ["b16"], lambda a: ~a)
op("v_bfrev_b32", "b32", ["b32"], nm.bitrev32)
op("v_ffbh_u32 v_clz_i32_u32", "b32", ["b32"], nm.clz32)
op("v_ffbl_b32 v_ctz_i32_b32", "b32", ["b32"], nm.ctz32)
op("v_ffbh_i32 v_cls_i32", "b32", ["b32"], nm.cls32)
op("v_and_b32", "b32", ["b32", "b32"], lambda a, b: a & b)
op("v_or_b32", "b32", ["b32", "b32"], lambda a, b: a | b)
op("v_xor_b32", "b32", ["b32", "b32"], lambda a, b: a ^ b)
op("v_xnor_b32", "b32", ["b32", "b32"], lambda a, b: ~(a ^ b))
op("v_and_b16", "b16", ["b16", "b16"], lambda a, b: a & b)
op("v_or_b16", "b16", ["b16", "b16"], lambda a, b: a | b)
op("v_xor_b16", "b16", ["b16", "b16"], lambda a, b: a ^ b)
op("v_lshlrev_b32", "b32", ["u32", "b32"], lambda a, b: b << (a & U32(31)))
op("v_lshrrev_b32", "b32", ["u32", "b32"], lambda a, b: b >> (a & U32(31)))
op("v_ashrrev_i32", "i32", ["u32", "i32"], lambda a, b: b >> (a & U32(31)).astype(I32))
op("v_lshlrev_b64", "b64", ["u32", "b64"], lambda a, b: b << (a & U32(63)).astype(U64))
op("v_lshrrev_b64", "b64", ["u32", "b64"], lambda a, b: b >> (a & U32(63)).astype(U64))
op("v_ashrrev_i64", "i64", ["u32", "i64"], lambda a, b: b >> (a & U32(63)).astype(I64))
op("v_lshlrev_b16", "b16", ["u16", "b16"], lambda a, b: b << (a & U16(15)))
op("v_lshrrev_b16", "b16", ["u16", "b16"], lambda a, b: b >> (a & U16(15)))
op("v_ashrrev_i16", "i16", ["u16", "i16"], lambda a, b: b >> (a & U16(15)).astype(I16))
op("v_lshl_add_u32", "u32", ["u32", "u32", "u32"], lambda a, b, c: (a << (b & U32(31))) + c)
op("v_add_lshl_u32", "u32", ["u32", "u32", "u32"], lambda a, b, c: (a + b) << (c & U32(31)))
op("v_lshl_or_b32", "b32", ["b32", "u32", "b32"], lambda a, b, c: (a << (b & U32(31))) | c)
op("v_and_or_b32", "b32", ["b32", "b32", "b32"], lambda a, b, c: (a & b) | c)
op("v_or3_b32", "b32", ["b32", "b32", "b32"], lambda a, b, c: a | b | c)
op("v_xor3_b32", "b32", ["b32", "b32", "b32"], lambda a, b, c: a ^ b ^ c)
op("v_add3_u32", "u32", ["u32", "u32", "u32"], lambda a, b, c: a + b + c)
op("v_xad_u32", "u32", ["u32", "u32", "u32"], lambda a, b, c: (a ^ b) + c)
op("v_lshl_add_u64", "u64", ["u64", "u32", "u64"], lambda a, b, c: (a << (b & U32(7)).astype(U64)) + c)


def _bfe_u(a, b, c):
    off = (b & U32(31))
    w = (c & U32(31))
    mask = np.where(w == 0, U32(0), (U32(1) << w) - U32(1)).astype(U32)
    return (a >> off) & mask


def _bfe_i(a, b, c):
    off = (b & U32(31)).astype(U64)
    w = (c & U32(31)).astype(U64)
    mask = (U64(1) << w) - U64(1)
    x = (np.asarray(a).astype(U64) >> off) & mask
    sign = ((x >> np.maximum(w, U64(1)) - U64(1)) & U64(1)) != 0
    r = np.where(sign, x | ~mask, x) & U64(0xFFFFFFFF)
    return np.where(w == 0, U64(0), r).astype(U32)


op("v_bfe_u32", "u32", ["u32", "u32", "u32"], _bfe_u)
op("v_bfe_i32", "u32", ["u32", "u32", "u32"], _bfe_i)
op("v_bfi_b32", "b32", ["b32", "b32", "b32"], lambda a, b, c: (a & b) | (~a & c))
op("v_bfm_b32", "b32", ["u32", "u32"],
   lambda a, b: ((np.where((a & U32(31)) == 0, U64(0), (U64(1) << (a & U32(31)).astype(U64)) - U64(1))
                  << (b & U32(31)).astype(U64)) & U64(0xFFFFFFFF)).astype(U32))
op("v_alignbit_b32", "b32", ["b32", "b32", "u32"],
   lambda a, b, c: (((a.astype(U64) << U64(32)) | b.astype(U64)) >> (c & U32(31)).astype(U64)).astype(U32))
op("v_alignbyte_b32", "b32", ["b32", "b32", "u32"],
   lambda a, b, c: (((a.astype(U64) << U64(32)) | b.astype(U64)) >> (U32(8) * (c & U32(3))).astype(U64)).astype(U32))


def _perm(a, b, c):
    data = (np.asarray(a).astype(U64) << U64(32)) | np.asarray(b).astype(U64)
    out = np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b), np.shape(c)), dtype=U32)
    for k in range(4):
        sel = (np.asarray(c) >> U32(8 * k)) & U32(0xFF)
        byte = ((data >> (U64(8) * np.minimum(sel, U32(7)).astype(U64))) & U64(0xFF)).astype(U32)
        sign = np.zeros_like(byte)
        for s, bit in ((8, 15), (9, 31), (10, 47), (11, 63)):
            sign = np.where(sel == s, np.where((data >> U64(bit)) & U64(1), U32(0xFF), U32(0)), sign)
        val = np.where(sel < 8, byte, np.where(sel < 12, sign, np.where(sel == 12, U32(0), U32(0xFF))))
        out |= (val.astype(U32) << U32(8 * k))
    return out


op("v_perm_b32", "b32", ["b32", "b32", "b32"], _perm)
op("v_bcnt_u32_b32", "u32", ["b32", "u32"], lambda a, b: nm.popcount(a) + b)

# ---------------------------------------------------------------- integer arithmetic
op("v_add_u32 v_add_nc_u32", "u32", ["u32", "u32"], lambda a, b: a + b, clamp="u32")
op("v_sub_u32 v_sub_nc_u32", "u32", ["u32", "u32"], lambda a, b: a - b, clamp="u32sub")
op("v_subrev_u32 v_subrev_nc_u32", "u32", ["u32", "u32"], lambda a, b: b - a, clamp="u32subrev")
op("v_add_i32 v_add_nc_i32", "i32", ["i32", "i32"], lambda a, b: a + b)
op("v_sub_i32 v_sub_nc_i32", "i32", ["i32", "i32"], lambda a, b: a - b)
op("v_add_u16 v_add_nc_u16", "u16", ["u16", "u16"], lambda a, b: a + b)
op("v_sub_u16 v_sub_nc_u16", "u16", ["u16", "u16"], lambda a, b: a - b)
op("v_subrev_u16", "u16", ["u16", "u16"], lambda a, b: b - a)
op("v_add_i16 v_add_nc_i16", "i16", ["i16", "i16"], lambda a, b: a + b)
op("v_sub_i16 v_sub_nc_i16", "i16", ["i16", "i16"], lambda a, b: a - b)
op("v_mul_lo_u16", "u16", ["u16", "u16"], lambda a, b: a * b)
op("v_mul_lo_u32", "u32", ["u32", "u32"], lambda a, b: a * b)
op("v_mul_hi_u32", "u32", ["u32", "u32"], lambda a, b: ((a.astype(U64) * b.astype(U64)) >> U64(32)).astype(U32))
op("v_mul_hi_i32", "i32", ["i32", "i32"], lambda a, b: ((a.astype(I64) * b.astype(I64)) >> I64(32)).astype(I32))


def _u24(x):
    return np.asarray(x).astype(U32) & U32(0xFFFFFF)


def _i24(x):
    return ((np.asarray(x).astype(U32) << U32(8)).astype(I32) >> I32(8)).astype(I64)


op("v_mul_u32_u24", "u32", ["u32", "u32"], lambda a, b: (_u24(a).astype(U64) * _u24(b).astype(U64)).astype(U32))
op("v_mul_hi_u32_u24", "u32", ["u32", "u32"],
   lambda a, b: ((_u24(a).astype(U64) * _u24(b).astype(U64)) >> U64(32)).astype(U32))
op("v_mul_i32_i24", "u32", ["u32", "u32"], lambda a, b: (_i24(a) * _i24(b)).astype(U32))
op("v_mul_hi_i32_i24", "u32", ["u32", "u32"], lambda a, b: ((_i24(a) * _i24(b)) >> I64(32)).astype(U32))
op("v_mad_u32_u24", "u32", ["u32", "u32", "u32"],
   lambda a, b, c: (_u24(a).astype(U64) * _u24(b).astype(U64)).astype(U32) + c)
op("v_mad_i32_i24", "u32", ["u32", "u32", "u32"], lambda a, b, c: (_i24(a) * _i24(b)).astype(U32) + c)
op("v_mad_u32_u16", "u32", ["u16", "u16", "u32"], lambda a, b, c: a.astype(U32) * b.astype(U32) + c)
op("v_mad_i32_i16", "i32", ["i16", "i16", "i32"], lambda a, b, c: a.astype(I32) * b.astype(I32) + c)
op("v_mad_u16 v_mad_legacy_u16", "u16", ["u16", "u16", "u16"], lambda a, b, c: a * b + c)
op("v_mad_i16 v_mad_legacy_i16", "i16", ["i16", "i16", "i16"], lambda a, b, c: a * b + c)
op("v_min_u32", "u32", ["u32", "u32"], np.minimum)
op("v_max_u32", "u32", ["u32", "u32"], np.maximum)
op("v_min_i32", "i32", ["i32", "i32"], np.minimum)
op("v_max_i32", "i32", ["i32", "i32"], np.maximum)
op("v_min_u16", "u16", ["u16", "u16"], np.minimum)
op("v_max_u16", "u16", ["u16", "u16"], np.maximum)
op("v_min_i16", "i16", ["i16", "i16"], np.minimum)
op("v_max_i16", "i16", ["i16", "i16"], np.maximum)
for _t in ("u32", "i32", "u16", "i16"):
    op(f"v_min3_{_t}", _t, [_t] * 3, lambda a, b, c: np.minimum(np.minimum(a, b), c))
    op(f"v_max3_{_t}", _t, [_t] * 3, lambda a, b, c: np.maximum(np.maximum(a, b), c))
    op(f"v_med3_{_t}", _t, [_t] * 3,
       lambda a, b, c: np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c)))
op("v_maxmin_u32", "u32", ["u32"] * 3, lambda a, b, c: np.minimum(np.maximum(a, b), c))
op("v_minmax_u32", "u32", ["u32"] * 3, lambda a, b, c: np.maximum(np.minimum(a, b), c))
op("v_maxmin_i32", "i32", ["i32"] * 3, lambda a, b, c: np.minimum(np.maximum(a, b), c))
op("v_minmax_i32", "i32", ["i32"] * 3, lambda a, b, c: np.maximum(np.minimum(a, b), c))
op("v_sad_u32", "u32", ["u32"] * 3, lambda a, b, c: np.where(a > b, a - b, b - a) + c)


def _sad_bytes(a, b, c, width):
    out = np.asarray(c).astype(U32)
    for k in range(0, 32, width):
        m = U32((1 << width) - 1)
        x = (np.asarray(a) >> U32(k)) & m
        y = (np.asarray(b) >> U32(k)) & m
        out = out + np.where(x > y, x - y, y - x).astype(U32)
    return out


op("v_sad_u8", "u32", ["u32"] * 3, lambda a, b, c: _sad_bytes(a, b, c, 8))
op("v_sad_u16", "u32", ["u32"] * 3, lambda a, b, c: _sad_bytes(a, b, c, 16))
op("v_sad_hi_u8", "u32", ["u32"] * 3, lambda a, b, c: (_sad_bytes(a, b, 0, 8) << U32(16)) + c)

# dot products of packed sub-dword elements (VOP2 "c"/"acc" forms accumulate into vdst)


def dot_elems(x, bits: int, signed: bool):
    """The 32 // bits packed elements of x (lowest first) as int64."""
    x = np.asarray(x).astype(np.int64) & 0xFFFFFFFF
    m = (1 << bits) - 1
    out = []
    for k in range(32 // bits):
        e = (x >> (k * bits)) & m
        if signed:
            e = (e ^ (1 << (bits - 1))) - (1 << (bits - 1))
        out.append(e)
    return out


def dot_int(a, b, bits: int, sa: bool, sb: bool):
    """Exact integer dot product (int64) of the packed elements of a and b."""
    return sum(x * y for x, y in zip(dot_elems(a, bits, sa), dot_elems(b, bits, sb), strict=True))


def _halves_f16(x):
    x = np.asarray(x).astype(U32)
    return ((x & U32(0xFFFF)).astype(U16).view(F16).astype(F64),
            (x >> U32(16)).astype(U16).view(F16).astype(F64))


def _dot2_f32_f16(a, b, c):
    (al, ah), (bl, bh) = _halves_f16(a), _halves_f16(b)
    return (al * bl + ah * bh + np.asarray(c).astype(F64)).astype(F32)


def _pk_fmac_f16(a, b, c):
    (al, ah), (bl, bh), (cl, ch) = _halves_f16(a), _halves_f16(b), _halves_f16(c)
    lo = nm.fma16(al, bl, cl).view(U16).astype(U32)
    hi = nm.fma16(ah, bh, ch).view(U16).astype(U32)
    return lo | (hi << U32(16))


op("v_dot2c_f32_f16 v_dot2acc_f32_f16", "f32", ["b32", "b32"], _dot2_f32_f16, kind="mac")
op("v_dot2c_i32_i16", "i32", ["b32", "b32"], lambda a, b, c: dot_int(a, b, 16, True, True) + c, kind="mac")
op("v_dot4c_i32_i8", "i32", ["b32", "b32"], lambda a, b, c: dot_int(a, b, 8, True, True) + c, kind="mac")
op("v_dot8c_i32_i4", "i32", ["b32", "b32"], lambda a, b, c: dot_int(a, b, 4, True, True) + c, kind="mac")
op("v_pk_fmac_f16", "b32", ["b32", "b32"], _pk_fmac_f16, kind="mac")

# carry-out and carry-in forms: fn -> (result, carry)


def _addc(a, b, cin=None):
    s = a.astype(U64) + b.astype(U64) + (0 if cin is None else cin.astype(U64))
    return s.astype(U32), (s >> U64(32)).astype(bool)


def _subc(a, b, cin=None):
    s = a.astype(np.int64) - b.astype(np.int64) - (0 if cin is None else cin.astype(np.int64))
    return s.astype(U32), s < 0


op("v_add_co_u32 v_add_i32_vop3b", "u32", ["u32", "u32"], lambda a, b: _addc(a, b), kind="carry_out", clamp="u32")
op("v_sub_co_u32", "u32", ["u32", "u32"], lambda a, b: _subc(a, b), kind="carry_out")
op("v_subrev_co_u32", "u32", ["u32", "u32"], lambda a, b: _subc(b, a), kind="carry_out")
op("v_addc_co_u32 v_add_co_ci_u32", "u32", ["u32", "u32"], lambda a, b, c: _addc(a, b, c), kind="carry_inout")
op("v_subb_co_u32 v_sub_co_ci_u32", "u32", ["u32", "u32"], lambda a, b, c: _subc(a, b, c), kind="carry_inout")
op("v_subbrev_co_u32 v_subrev_co_ci_u32", "u32", ["u32", "u32"], lambda a, b, c: _subc(b, a, c), kind="carry_inout")


def _mad_u64(a, b, c):
    p = a.astype(U64) * b.astype(U64)
    s = p + c
    return s, s < p


def _mad_i64(a, b, c):
    p = a.astype(I64) * b.astype(I64)
    return (p + c).astype(I64), np.zeros(np.shape(p), dtype=bool)


op("v_mad_u64_u32", "u64", ["u32", "u32", "u64"], _mad_u64, kind="carry_out")
op("v_mad_i64_i32", "i64", ["i32", "i32", "i64"], _mad_i64, kind="carry_out")

# ---------------------------------------------------------------- float arithmetic
for _t, _dt in (("f32", F32), ("f16", F16), ("f64", F64)):
    op(f"v_add_{_t}", _t, [_t, _t], lambda a, b: a + b)
    op(f"v_sub_{_t}", _t, [_t, _t], lambda a, b: a - b)
    op(f"v_subrev_{_t}", _t, [_t, _t], lambda a, b: b - a)
    op(f"v_mul_{_t}", _t, [_t, _t], lambda a, b: a * b)
    op(f"v_min_{_t}", _t, [_t, _t], np.fmin)
    op(f"v_max_{_t}", _t, [_t, _t], np.fmax)
    op(f"v_min3_{_t}", _t, [_t] * 3, lambda a, b, c: np.fmin(np.fmin(a, b), c))
    op(f"v_max3_{_t}", _t, [_t] * 3, lambda a, b, c: np.fmax(np.fmax(a, b), c))
    op(f"v_med3_{_t}", _t, [_t] * 3, lambda a, b, c: np.fmax(np.fmin(a, b), np.fmin(np.fmax(a, b), c)))
    op(f"v_maxmin_{_t}", _t, [_t] * 3, lambda a, b, c: np.fmin(np.fmax(a, b), c))
    op(f"v_minmax_{_t}", _t, [_t] * 3, lambda a, b, c: np.fmax(np.fmin(a, b), c))
    op(f"v_ldexp_{_t}", _t, [_t, "i32"], nm.ldexp)
    op(f"v_trunc_{_t}", _t, [_t], np.trunc)
    op(f"v_ceil_{_t}", _t, [_t], np.ceil)
    op(f"v_floor_{_t}", _t, [_t], np.floor)
    op(f"v_rndne_{_t}", _t, [_t], np.rint)
    op(f"v_fract_{_t}", _t, [_t],
       lambda a, dt=_dt: np.where(np.isinf(a), dt(np.nan), np.minimum(a - np.floor(a), np.nextafter(dt(1), dt(0)))).astype(dt))
    op(f"v_frexp_mant_{_t}", _t, [_t], nm.frexp_mant)
    op(f"v_sqrt_{_t}", _t, [_t], lambda a, dt=_dt: np.sqrt(a.astype(F64)).astype(dt))
    op(f"v_rcp_{_t}", _t, [_t], lambda a, dt=_dt: (F64(1.0) / a.astype(F64)).astype(dt))
    op(f"v_rsq_{_t}", _t, [_t], lambda a, dt=_dt: (F64(1.0) / np.sqrt(a.astype(F64))).astype(dt))
op("v_frexp_exp_i32_f32 v_frexp_exp_i32_f64", "i32", ["f32"], nm.frexp_exp)
OPS["v_frexp_exp_i32_f64"] = Op("i32", ("f64",), nm.frexp_exp)
op("v_frexp_exp_i16_f16", "i16", ["f16"], lambda a: nm.frexp_exp(a).astype(I16))
op("v_mul_legacy_f32 v_mul_dx9_zero_f32", "f32", ["f32", "f32"],
   lambda a, b: np.where((a == 0) | (b == 0), F32(0), a * b).astype(F32))
op("v_rcp_iflag_f32", "f32", ["f32"], lambda a: (F64(1.0) / a.astype(F64)).astype(F32))
op("v_rcp_clamp_f32", "f32", ["f32"], lambda a: np.clip((F64(1.0) / a.astype(F64)), -3.4028234663852886e38, 3.4028234663852886e38).astype(F32))
op("v_exp_f32", "f32", ["f32"], lambda a: np.exp2(a.astype(F64)).astype(F32))
op("v_log_f32", "f32", ["f32"], lambda a: np.log2(a.astype(F64)).astype(F32))
op("v_exp_f16", "f16", ["f16"], lambda a: np.exp2(a.astype(F64)).astype(F16))
op("v_log_f16", "f16", ["f16"], lambda a: np.log2(a.astype(F64)).astype(F16))
op("v_exp_legacy_f32", "f32", ["f32"], lambda a: np.exp2(a.astype(F64)).astype(F32))
op("v_log_legacy_f32", "f32", ["f32"], lambda a: np.log2(a.astype(F64)).astype(F32))
op("v_sin_f32", "f32", ["f32"], lambda a: np.sin(a.astype(F64) * 2 * np.pi).astype(F32))
op("v_cos_f32", "f32", ["f32"], lambda a: np.cos(a.astype(F64) * 2 * np.pi).astype(F32))
op("v_sin_f16", "f16", ["f16"], lambda a: np.sin(a.astype(F64) * 2 * np.pi).astype(F16))
op("v_cos_f16", "f16", ["f16"], lambda a: np.cos(a.astype(F64) * 2 * np.pi).astype(F16))
op("v_fma_f32 v_fma_legacy_f32", "f32", ["f32"] * 3, nm.fma32)
op("v_fma_dx9_zero_f32", "f32", ["f32"] * 3,
   lambda a, b, c: np.where((a == 0) | (b == 0), c, nm.fma32(a, b, c)).astype(F32))
op("v_fma_f64", "f64", ["f64"] * 3, nm.fma64)
op("v_fma_f16 v_fma_legacy_f16", "f16", ["f16"] * 3, nm.fma16)
op("v_mad_f32 v_mad_legacy_f32", "f32", ["f32"] * 3, lambda a, b, c: (a * b) + c)
op("v_mad_f16 v_mad_legacy_f16", "f16", ["f16"] * 3, lambda a, b, c: (a * b) + c)
# accumulate into the destination: fn(a, b, d)
op("v_fmac_f32 v_fmac_legacy_f32", "f32", ["f32", "f32"], nm.fma32, kind="mac")
op("v_fmac_f64", "f64", ["f64", "f64"], nm.fma64, kind="mac")
op("v_fmac_f16", "f16", ["f16", "f16"], nm.fma16, kind="mac")
op("v_fmac_dx9_zero_f32", "f32", ["f32", "f32"],
   lambda a, b, c: np.where((a == 0) | (b == 0), c, nm.fma32(a, b, c)).astype(F32), kind="mac")
op("v_mac_f32 v_mac_legacy_f32", "f32", ["f32", "f32"], lambda a, b, c: a * b + c, kind="mac")
op("v_mac_f16", "f16", ["f16", "f16"], lambda a, b, c: a * b + c, kind="mac")
# literal-constant forms: the table gives the operand order; fn(src0, literal/src1, …)
op("v_fmaak_f32", "f32", ["f32", "f32", "f32"], nm.fma32)
op("v_fmamk_f32", "f32", ["f32", "f32", "f32"], nm.fma32)
op("v_madak_f32", "f32", ["f32", "f32", "f32"], lambda a, b, c: a * b + c)
op("v_madmk_f32", "f32", ["f32", "f32", "f32"], lambda a, b, c: a * b + c)
op("v_fmaak_f16 v_fmamk_f16", "f16", ["f16", "f16", "f16"], nm.fma16)
op("v_madak_f16 v_madmk_f16", "f16", ["f16", "f16", "f16"], lambda a, b, c: a * b + c)
op("v_div_fixup_f32", "f32", ["f32"] * 3, lambda a, b, c: nm.div_fixup(a, b, c, F32))
op("v_div_fixup_f64", "f64", ["f64"] * 3, lambda a, b, c: nm.div_fixup(a, b, c, F64))
op("v_div_fixup_f16 v_div_fixup_legacy_f16", "f16", ["f16"] * 3, lambda a, b, c: nm.div_fixup(a, b, c, F16))
op("v_div_scale_f32", "f32", ["f32"] * 3, lambda a, b, c: nm.div_scale(a, b, c, False), kind="carry_out")
op("v_div_scale_f64", "f64", ["f64"] * 3, lambda a, b, c: nm.div_scale(a, b, c, True), kind="carry_out")
op("v_div_fmas_f32", "f32", ["f32"] * 3, lambda a, b, c, v: nm.div_fmas(a, b, c, v, False), kind="vcc_in")
op("v_div_fmas_f64", "f64", ["f64"] * 3, lambda a, b, c, v: nm.div_fmas(a, b, c, v, True), kind="vcc_in")
op("v_cvt_pkrtz_f16_f32 v_cvt_pk_rtz_f16_f32", "u32", ["f32", "f32"],
   lambda a, b: nm.f16_rtz(a).astype(U32) | (nm.f16_rtz(b).astype(U32) << U32(16)))
op("v_pack_b32_f16", "u32", ["f16", "f16"],
   lambda a, b: np.asarray(a).view(U16).astype(U32) | (np.asarray(b).view(U16).astype(U32) << U32(16)))
op("v_cvt_pknorm_i16_f32", "u32", ["f32", "f32"],
   lambda a, b: (np.rint(np.clip(a, -1, 1) * 32767).astype(I32).astype(U32) & U32(0xFFFF))
   | ((np.rint(np.clip(b, -1, 1) * 32767).astype(I32).astype(U32) & U32(0xFFFF)) << U32(16)))
op("v_cvt_pk_u16_u32", "u32", ["u32", "u32"],
   lambda a, b: np.minimum(a, U32(0xFFFF)) | (np.minimum(b, U32(0xFFFF)) << U32(16)))
op("v_cvt_pk_i16_i32", "u32", ["i32", "i32"],
   lambda a, b: (np.clip(a, -32768, 32767).astype(U32) & U32(0xFFFF))
   | ((np.clip(b, -32768, 32767).astype(U32) & U32(0xFFFF)) << U32(16)))
op("v_cvt_pk_u8_f32", "u32", ["f32", "u32", "u32"],
   lambda a, b, c: (c & ~(U32(0xFF) << (U32(8) * (b & U32(3)))))
   | (nm.cvt_f_to_u32(np.clip(np.rint(a), 0, 255)).astype(U32) << (U32(8) * (b & U32(3)))))

# ---------------------------------------------------------------- conversions
op("v_cvt_f32_i32", "f32", ["i32"], lambda a: a.astype(F32))
op("v_cvt_f32_u32", "f32", ["u32"], lambda a: a.astype(F32))
op("v_cvt_i32_f32", "i32", ["f32"], nm.cvt_f_to_i32)
op("v_cvt_u32_f32", "u32", ["f32"], nm.cvt_f_to_u32)
op("v_cvt_f64_i32", "f64", ["i32"], lambda a: a.astype(F64))
op("v_cvt_f64_u32", "f64", ["u32"], lambda a: a.astype(F64))
op("v_cvt_i32_f64", "i32", ["f64"], nm.cvt_f_to_i32)
op("v_cvt_u32_f64", "u32", ["f64"], nm.cvt_f_to_u32)
op("v_cvt_f32_f64", "f32", ["f64"], lambda a: a.astype(F32))
op("v_cvt_f64_f32", "f64", ["f32"], lambda a: a.astype(F64))
op("v_cvt_f16_f32", "f16", ["f32"], lambda a: a.astype(F16))
op("v_cvt_f32_f16", "f32", ["f16"], lambda a: a.astype(F32))
op("v_cvt_f16_u16", "f16", ["u16"], lambda a: a.astype(F16))
op("v_cvt_f16_i16", "f16", ["i16"], lambda a: a.astype(F16))
op("v_cvt_u16_f16", "u16", ["f16"], nm.cvt_f_to_u16)
op("v_cvt_i16_f16", "i16", ["f16"], nm.cvt_f_to_i16)
op("v_cvt_i32_i16", "i32", ["i16"], lambda a: a.astype(I32))
op("v_cvt_u32_u16", "u32", ["u16"], lambda a: a.astype(U32))
op("v_cvt_flr_i32_f32 v_cvt_floor_i32_f32", "i32", ["f32"], lambda a: nm.cvt_f_to_i32(np.floor(a)))
op("v_cvt_rpi_i32_f32 v_cvt_nearest_i32_f32", "i32", ["f32"], lambda a: nm.cvt_f_to_i32(np.floor(a.astype(F64) + 0.5)))
op("v_cvt_off_f32_i4", "f32", ["u32"], lambda a: (((a & U32(15)).astype(I32) ^ 8) - 8).astype(F32) / F32(16))
for _k in range(4):
    op(f"v_cvt_f32_ubyte{_k}", "f32", ["u32"], lambda a, k=_k: ((a >> U32(8 * k)) & U32(0xFF)).astype(F32))


def _sat_pk_u8_i16(a):
    a = np.asarray(a).astype(U32)
    lo = (a & U32(0xFFFF)).astype(U16).view(I16)
    hi = (a >> U32(16)).astype(U16).view(I16)
    return np.clip(lo, 0, 255).astype(U16) | (np.clip(hi, 0, 255).astype(U16) << U16(8))


op("v_sat_pk_u8_i16", "u16", ["u32"], _sat_pk_u8_i16)

# ---------------------------------------------------------------- lane operations (special)
op("v_cndmask_b32", "b32", ["b32", "b32"], lambda a, b, m: np.where(m, b, a), kind="cndmask")
op("v_cndmask_b16", "b16", ["b16", "b16"], lambda a, b, m: np.where(m, b, a), kind="cndmask")
op("v_readlane_b32", None, ["b32", "u32"], None, kind="readlane")
op("v_readfirstlane_b32", None, ["b32"], None, kind="readfirstlane")
op("v_writelane_b32", "b32", ["b32", "u32"], None, kind="writelane")
op("v_mbcnt_lo_u32_b32", "u32", ["u32", "u32"], None, kind="mbcnt_lo")
op("v_mbcnt_hi_u32_b32", "u32", ["u32", "u32"], None, kind="mbcnt_hi")
op("v_accvgpr_read_b32 v_accvgpr_read", "b32", ["b32"], lambda a: a, kind="acc_read")
op("v_accvgpr_write_b32 v_accvgpr_write", "b32", ["b32"], lambda a: a, kind="acc_write")
op("v_accvgpr_mov_b32", "b32", ["b32"], lambda a: a, kind="acc_mov")
op("v_nop v_clrexcp v_pipeflush", None, [], None, kind="nop")
op("v_movrels_b32 v_movreld_b32 v_movrelsd_b32 v_movrelsd_2_b32", "b32", ["b32"], None, kind="movrel")
op("v_swap_b32", "b32", ["b32"], None, kind="swap")
op("v_permlane16_b32 v_permlanex16_b32", "b32", ["b32", "u32", "u32"], None, kind="permlane")
op("v_cvt_pk_u16_f32", "u32", ["f32", "f32"],
   lambda a, b: nm.cvt_f_to_u16(a).astype(U32) | (nm.cvt_f_to_u16(b).astype(U32) << U32(16)))
op("v_cvt_pk_i16_f32", "u32", ["f32", "f32"],
   lambda a, b: nm.cvt_f_to_i16(a).view(U16).astype(U32) | (nm.cvt_f_to_i16(b).view(U16).astype(U32) << U32(16)))

# ---------------------------------------------------------------- packed (VOP3P) operations
# (lo, hi) halves computed separately; op_sel / op_sel_hi / neg_lo / neg_hi apply per half.
PK: dict[str, tuple[str, object]] = {
    "v_pk_add_f16": ("f16", lambda a, b: a + b),
    "v_pk_mul_f16": ("f16", lambda a, b: a * b),
    "v_pk_fma_f16": ("f16", nm.fma16),
    "v_pk_min_f16": ("f16", np.fmin),
    "v_pk_max_f16": ("f16", np.fmax),
    "v_pk_add_u16": ("u16", lambda a, b: a + b),
    "v_pk_sub_u16": ("u16", lambda a, b: a - b),
    "v_pk_add_i16": ("i16", lambda a, b: a + b),
    "v_pk_sub_i16": ("i16", lambda a, b: a - b),
    "v_pk_mul_lo_u16": ("u16", lambda a, b: a * b),
    "v_pk_lshlrev_b16": ("u16", lambda a, b: b << (a & U16(15))),
    "v_pk_lshrrev_b16": ("u16", lambda a, b: b >> (a & U16(15))),
    "v_pk_ashrrev_i16": ("i16", lambda a, b: b >> (a & I16(15))),
    "v_pk_max_u16": ("u16", np.maximum),
    "v_pk_min_u16": ("u16", np.minimum),
    "v_pk_max_i16": ("i16", np.maximum),
    "v_pk_min_i16": ("i16", np.minimum),
    "v_pk_mad_u16": ("u16", lambda a, b, c: a * b + c),
    "v_pk_mad_i16": ("i16", lambda a, b, c: a * b + c),
    # 32-bit halves of 64-bit registers (gfx90a / gfx942)
    "v_pk_add_f32": ("f32", lambda a, b: a + b),
    "v_pk_mul_f32": ("f32", lambda a, b: a * b),
    "v_pk_fma_f32": ("f32", nm.fma32),
    "v_pk_mov_b32": ("u32", lambda a, b: None),
}
PK_ARITY = {"v_pk_fma_f16": 3, "v_pk_mad_u16": 3, "v_pk_mad_i16": 3, "v_pk_fma_f32": 3}

# ---------------------------------------------------------------- comparisons
_FCMP = {
    "f": lambda a, b: np.zeros(np.broadcast(a, b).shape, dtype=bool),
    "lt": lambda a, b: a < b, "eq": lambda a, b: a == b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "lg": lambda a, b: (a < b) | (a > b), "ge": lambda a, b: a >= b,
    "o": lambda a, b: ~(np.isnan(a) | np.isnan(b)), "u": lambda a, b: np.isnan(a) | np.isnan(b),
    "nge": lambda a, b: ~(a >= b), "nlg": lambda a, b: ~((a < b) | (a > b)),
    "ngt": lambda a, b: ~(a > b), "nle": lambda a, b: ~(a <= b), "neq": lambda a, b: ~(a == b),
    "nlt": lambda a, b: ~(a < b), "tru": lambda a, b: np.ones(np.broadcast(a, b).shape, dtype=bool),
    "t": lambda a, b: np.ones(np.broadcast(a, b).shape, dtype=bool),
}
_ICMP = {
    "f": _FCMP["f"], "lt": _FCMP["lt"], "eq": _FCMP["eq"], "le": _FCMP["le"], "gt": _FCMP["gt"],
    "ne": lambda a, b: a != b, "lg": lambda a, b: a != b, "ge": _FCMP["ge"], "t": _FCMP["t"],
    "tru": _FCMP["t"],
}


def cmp_op(base: str) -> Op | None:
    """v_cmp[x]_<cond>_<type> and v_cmp[x]_class_<type>."""
    parts = base.split("_")
    if len(parts) != 4 or parts[0] != "v" or parts[1] not in ("cmp", "cmpx", "cmps", "cmpsx"):
        return None
    cond, t = parts[2], parts[3]
    if t not in DTYPES:
        return None
    kind = "cmpx" if parts[1].endswith("x") else "cmp"
    if cond == "class":
        return Op("bool", (t, "u32"), nm.fclass, kind=kind)
    table = _FCMP if t.startswith("f") else _ICMP
    fn = table.get(cond)
    if fn is None:
        return None
    return Op("bool", (t, t), fn, kind=kind)


def lookup(base: str) -> Op | None:
    o = OPS.get(base)
    if o is None and base.startswith("v_cmp"):
        o = cmp_op(base)
        if o is not None:
            OPS[base] = o
    return o
