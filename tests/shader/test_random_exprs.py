"""Randomly generated integer and float expressions, compiled by clang-19 -O2, against numpy.

A seeded generator writes OpenCL C expressions over per-lane values (VALU code) and kernel
arguments (SALU code when the whole expression is uniform), with C semantics that are fully
defined (unsigned wrap-around, masked shift counts, guarded divisors), and the same expression
as a numpy function. Float expressions are compiled with FP_CONTRACT OFF so every operation
rounds once, as numpy's float32 does, and with -cl-fp32-correctly-rounded-divide-sqrt.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from .conftest import TARGETS, needs_llvm
from .harness import CodeObject, Device, compile_cl

pytestmark = needs_llvm

M32 = np.uint64((1 << 32) - 1)
U = np.uint64


class IntGen:
    """Expressions over uint values; C text and a numpy function on uint64 arrays (32-bit)."""

    def __init__(self, rnd: random.Random, leaves: list[str]) -> None:
        self.r = rnd
        self.leaves = leaves

    def leaf(self):
        r = self.r
        if r.random() < 0.25:
            c = r.choice([0, 1, 7, 31, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, r.getrandbits(32)])
            return f"{c}u", (lambda env, c=c: np.full(1, c, dtype=np.uint64))
        v = r.choice(self.leaves)
        return v, (lambda env, v=v: env[v])

    def expr(self, depth: int):
        r = self.r
        if depth == 0 or r.random() < 0.15:
            return self.leaf()
        kind = r.randrange(22)
        a, fa = self.expr(depth - 1)
        if kind in (8, 9):
            # LLVM 19 -O2 miscompiles an unsigned division whose numerator it can prove is all
            # ones (e.g. `0xFFFFFFFFu / ((x & 0xFFFFu) | 1u)`: the quotient comes out truncated to
            # 16 bits, on every target). Mixing in a variable keeps the numerator unknown.
            v = self.leaves[0]
            a, fa = f"({a} ^ {v})", (lambda env, fa=fa, v=v: fa(env) ^ env[v])
        if kind <= 12:
            b, fb = self.expr(depth - 1)
        if kind == 0:
            return f"({a} + {b})", lambda e: (fa(e) + fb(e)) & M32
        if kind == 1:
            return f"({a} - {b})", lambda e: (fa(e) - fb(e)) & M32
        if kind == 2:
            return f"({a} * {b})", lambda e: (fa(e) * fb(e)) & M32
        if kind == 3:
            return f"({a} & {b})", lambda e: fa(e) & fb(e)
        if kind == 4:
            return f"({a} | {b})", lambda e: fa(e) | fb(e)
        if kind == 5:
            return f"({a} ^ {b})", lambda e: fa(e) ^ fb(e)
        if kind == 6:
            return f"({a} << ({b} & 31u))", lambda e: (fa(e) << (fb(e) & U(31))) & M32
        if kind == 7:
            return f"({a} >> ({b} & 31u))", lambda e: fa(e) >> (fb(e) & U(31))
        if kind == 8:
            return (f"({a} / (({b} & 0xFFFFu) | 1u))", lambda e: fa(e) // ((fb(e) & U(0xFFFF)) | U(1)))
        if kind == 9:
            return (f"({a} % (({b} & 0xFFFFu) | 1u))", lambda e: fa(e) % ((fb(e) & U(0xFFFF)) | U(1)))
        if kind == 10:
            return (f"((uint)((int){a} < (int){b}) ? {a} : {b})",
                    lambda e: np.where(_s32(fa(e)) < _s32(fb(e)), fa(e), fb(e)))
        if kind == 11:
            return (f"({a} > {b} ? {a} - {b} : {b} - {a})",
                    lambda e: np.where(fa(e) > fb(e), fa(e) - fb(e), fb(e) - fa(e)) & M32)
        if kind == 12:
            return (f"(uint)(((ulong){a} * (ulong){b}) >> 32)", lambda e: (fa(e) * fb(e)) >> U(32))
        if kind == 13:
            return f"(~{a})", lambda e: (~fa(e)) & M32
        if kind == 14:
            return f"(uint)((int){a} >> 7)", lambda e: _u(_s32(fa(e)) >> 7)
        if kind == 15:
            return (f"(uint)((int){a} / 37)", lambda e: _u(_tdiv(_s32(fa(e)), 37)))
        if kind == 16:
            return (f"(uint)((int){a} % -13)", lambda e: _u(_tmod(_s32(fa(e)), -13)))
        if kind == 17:
            return (f"(uint)(short){a}",
                    lambda e: _u(((fa(e) & U(0xFFFF)).astype(np.int64) ^ 0x8000) - 0x8000))
        if kind == 18:
            return f"(uint)(uchar){a}", lambda e: fa(e) & U(0xFF)
        if kind == 19:
            return (f"(uint)__builtin_popcount({a})",
                    lambda e: np.bitwise_count(fa(e).astype(np.uint64)).astype(np.uint64))
        if kind == 20:
            return (f"(uint)__builtin_clz({a} | 1u)",
                    lambda e: U(31) - np.floor(np.log2((fa(e) | U(1)).astype(np.float64))).astype(np.uint64))
        return (f"(uint)(((ulong){a} << 13 | 5ul) >> 9)", lambda e: ((fa(e) << U(13) | U(5)) >> U(9)) & M32)


def _u(x):
    """int64 values -> their 32-bit two's complement as uint64."""
    return (np.asarray(x, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint64)


def _s32(x):
    return (np.asarray(x, dtype=np.uint64) & M32).astype(np.uint32).view(np.int32).astype(np.int64)


def _tdiv(a, b):
    q = np.abs(a) // abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _tmod(a, b):
    return a - _tdiv(a, b) * b


class FloatGen:
    """float expressions without contraction: one IEEE rounding per operation."""

    def __init__(self, rnd: random.Random, leaves: list[str]) -> None:
        self.r = rnd
        self.leaves = leaves

    def expr(self, depth: int):
        r = self.r
        if depth == 0 or r.random() < 0.2:
            if r.random() < 0.25:
                c = r.choice([0.5, 1.0, -2.0, 3.25, 0.1, 1e-3, 1000.0])
                return f"{c!r}f", (lambda e, c=c: np.float32(c))
            v = r.choice(self.leaves)
            return v, (lambda e, v=v: e[v])
        k = r.randrange(10)
        a, fa = self.expr(depth - 1)
        b, fb = self.expr(depth - 1)
        if k == 0:
            return f"({a} + {b})", lambda e: np.float32(fa(e) + fb(e))
        if k == 1:
            return f"({a} - {b})", lambda e: np.float32(fa(e) - fb(e))
        if k == 2:
            return f"({a} * {b})", lambda e: np.float32(fa(e) * fb(e))
        if k == 3:
            return f"({a} / ({b} + 4.0f))", lambda e: np.float32(fa(e) / np.float32(fb(e) + np.float32(4)))
        if k == 4:
            return f"__builtin_fminf({a}, {b})", lambda e: np.fmin(fa(e), fb(e))
        if k == 5:
            return f"__builtin_fmaxf({a}, {b})", lambda e: np.fmax(fa(e), fb(e))
        if k == 6:
            return f"({a} < {b} ? {a} : -({b}))", lambda e: np.where(fa(e) < fb(e), fa(e), -fb(e)).astype(np.float32)
        if k == 7:
            return f"__builtin_fabsf({a})", lambda e: np.abs(fa(e))
        if k == 8:
            return (f"(float)(int)__builtin_fminf(__builtin_fmaxf({a}, -1e6f), 1e6f)",
                    lambda e: np.trunc(np.fmin(np.fmax(fa(e), np.float32(-1e6)), np.float32(1e6))).astype(np.float32))
        return f"(__builtin_floorf({a}) * 0.5f)", lambda e: np.float32(np.floor(fa(e)) * np.float32(0.5))


N_INT, N_FLOAT = 24, 16


def _int_source(seed: int):
    rnd = random.Random(seed)
    g = IntGen(rnd, ["a", "b", "k", "m"])
    exprs = [g.expr(4) for _ in range(N_INT)]
    uniform = [IntGen(rnd, ["k", "m"]).expr(4) for _ in range(6)]
    body = "\n".join(f"  out[{len(exprs) + len(uniform)} * i + {j}] = {t};" for j, (t, _) in enumerate(exprs + uniform))
    src = f"""
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
__kernel void ints(__global uint *out, __global const uint *av, __global const uint *bv, uint k, uint m, int n) {{
  int i = __builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x();
  if (i >= n) return;
  uint a = av[i], b = bv[i];
{body}
}}
"""
    return src, [f for _, f in exprs + uniform]


def _float_source(seed: int):
    rnd = random.Random(seed + 1000)
    g = FloatGen(rnd, ["x", "y", "s"])
    exprs = [g.expr(4) for _ in range(N_FLOAT)]
    body = "\n".join(f"  out[{N_FLOAT} * i + {j}] = {t};" for j, (t, _) in enumerate(exprs))
    src = f"""
#pragma OPENCL FP_CONTRACT OFF
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
__kernel void floats(__global float *out, __global const float *xv, __global const float *yv, float s, int n) {{
  int i = __builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x();
  if (i >= n) return;
  float x = xv[i], y = yv[i];
{body}
}}
"""
    return src, [f for _, f in exprs]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("target", TARGETS)
def test_random_integer_expressions(build_dir, target, seed):
    src, fns = _int_source(seed)
    path = build_dir / f"ints{seed}.cl"
    path.write_text(src)
    co = CodeObject(compile_cl(path, target, build_dir))
    d = Device(target, co)
    n = 300
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    a[:8] = [0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 31, 32, 65535]
    k, m = 0x9E3779B9, 12345
    cols = len(fns)
    out = d.buf(nbytes=4 * cols * n)
    d.launch("ints", (n,), (64,), out, d.buf(a), d.buf(b), k, m, n)
    got = d.read(out, np.uint32, cols * n).reshape(n, cols)
    env = {"a": a.astype(np.uint64), "b": b.astype(np.uint64), "k": np.uint64(k), "m": np.uint64(m)}
    for j, f in enumerate(fns):
        with np.errstate(all="ignore"):        # uint64 wrap-around is the intended arithmetic
            exp = np.broadcast_to(np.asarray(f(env)).astype(np.uint64) & M32, (n,)).astype(np.uint32)
        np.testing.assert_array_equal(got[:, j], exp, err_msg=f"expression {j} of seed {seed}:\n{src}")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("target", TARGETS)
def test_random_float_expressions(build_dir, target, seed):
    src, fns = _float_source(seed)
    path = build_dir / f"floats{seed}.cl"
    path.write_text(src)
    # OpenCL lets f32 division be 2.5 ulp off unless asked for correct rounding
    co = CodeObject(compile_cl(path, target, build_dir, ("-cl-fp32-correctly-rounded-divide-sqrt",)))
    d = Device(target, co)
    n = 300
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10).astype(np.float32)
    y = (rng.standard_normal(n) * 10).astype(np.float32)
    s = np.float32(1.75)
    out = d.buf(nbytes=4 * N_FLOAT * n)
    d.launch("floats", (n,), (64,), out, d.buf(x), d.buf(y), float(s), n)
    got = d.read(out, np.float32, N_FLOAT * n).reshape(n, N_FLOAT)
    env = {"x": x, "y": y, "s": s}
    with np.errstate(all="ignore"):
        for j, f in enumerate(fns):
            exp = np.broadcast_to(np.asarray(f(env), dtype=np.float32), (n,))
            np.testing.assert_array_equal(got[:, j], exp, err_msg=f"expression {j} of seed {seed}:\n{src}")
