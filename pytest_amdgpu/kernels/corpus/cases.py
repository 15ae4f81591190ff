"""Argument recipes and numpy references for the corpus kernels.

Each `Case` names a corpus kernel, a grid (work-items per dimension) and a work-group size,
a recipe that makes the arguments from a seeded numpy Generator (arrays become device buffers,
numpy scalars are passed by value with their exact type, `local` entries become
`LocalMemory` blocks), and a reference that computes, with numpy alone, what every output
array must hold afterwards. The references follow OpenCL C semantics (truncating division,
wrap-around in unsigned arithmetic, round-to-nearest-even conversions), written
independently of the kernels' code.

`run_case(case, device, queue)` runs one case through the public runtime API and returns
(results, expected); `check(case, results, expected)` compares them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CASES", "Case", "by_name", "check", "run_case"]

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    kernel: str
    grid: tuple[int, ...]
    block: tuple[int, ...]
    make_inputs: Callable[[np.random.Generator], Inputs]
    reference: Callable[[Inputs], dict[str, np.ndarray]]
    outputs: tuple[str, ...]
    tolerance: dict[str, tuple[float, float]] = field(default_factory=dict)  # (rtol, atol)
    local: dict[str, int] = field(default_factory=dict)     # __local args: name -> bytes

    def __str__(self) -> str:
        return self.name


def _u32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64).astype(np.uint64).astype(np.uint32)


def _wrap_i32(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _trunc_mod(a: int, b: int) -> int:
    return a - _trunc_div(a, b) * b


# -- element-wise float -----------------------------------------------------------------------

def _saxpy_in(rng: np.random.Generator) -> Inputs:
    n = 1000
    return {"a": np.float32(2.5), "x": rng.uniform(-100, 100, n).astype(np.float32),
            "y": rng.uniform(-100, 100, n).astype(np.float32), "count": np.uint32(n)}


def _saxpy_ref(v: Inputs) -> dict[str, np.ndarray]:
    a = np.float64(v["a"])
    return {"y": (a * v["x"].astype(np.float64) + v["y"]).astype(np.float32)}


def _float_in(rng: np.random.Generator) -> Inputs:
    n = 500
    return {"a": rng.uniform(-10, 10, n).astype(np.float32),
            "b": rng.uniform(-10, 10, n).astype(np.float32),
            "c": rng.uniform(-10, 10, n).astype(np.float32),
            "out": np.zeros(4 * n, np.float32), "count": np.uint32(n)}


def _float_ref(v: Inputs) -> dict[str, np.ndarray]:
    a, b, c = (v[k].astype(np.float64) for k in "abc")
    out = np.empty((len(a), 4))
    out[:, 0] = a * b + c
    out[:, 1] = np.minimum(a, b) - np.maximum(b, c)
    out[:, 2] = np.abs(a - c) * 0.5
    out[:, 3] = np.sqrt(np.abs(b)) + a / (1.0 + np.abs(c))
    return {"out": out.reshape(-1).astype(np.float32)}


def _double_in(rng: np.random.Generator) -> Inputs:
    n = 300
    b = rng.uniform(0.5, 4.0, n) * rng.choice([-1.0, 1.0], n)
    return {"a": rng.uniform(-1e3, 1e3, n), "b": b, "c": rng.uniform(-1e3, 1e3, n),
            "out": np.zeros(2 * n, np.float64), "count": np.uint32(n)}


def _double_ref(v: Inputs) -> dict[str, np.ndarray]:
    a, b, c = v["a"], v["b"], v["c"]
    out = np.empty((len(a), 2))
    out[:, 0] = a * b + c
    out[:, 1] = a / b - np.sqrt(np.abs(c))
    return {"out": out.reshape(-1)}


# -- integer ------------------------------------------------------------------------------------

def _int_in(rng: np.random.Generator) -> Inputs:
    n = 777
    a = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    b = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    a[:4] = [0, -1, 2**31 - 1, -2**31]
    b[:4] = [-2**31, 1, 2**31 - 1, -1]
    return {"a": a, "b": b, "out": np.zeros(6 * n, np.int32), "count": np.uint32(n)}


def _int_ref(v: Inputs) -> dict[str, np.ndarray]:
    a, b = v["a"].astype(np.int64), v["b"].astype(np.int64)
    out = np.empty((len(a), 6), np.int64)
    out[:, 0] = a + b
    out[:, 1] = a - b
    out[:, 2] = (a * b) & 0xFFFFFFFF
    out[:, 3] = (a * b) >> 32
    lo, hi = np.minimum(a, b) & 0xFFFFFFFF, (np.maximum(a, b) << 1) & 0xFFFFFFFF
    out[:, 4] = lo ^ hi
    out[:, 5] = ((a >> 3) & 0xFFFFFFFF) + ((b & 0xFFFFFFFF) >> 5)
    return {"out": _wrap_i32(out.reshape(-1))}


def _addr64_in(rng: np.random.Generator) -> Inputs:
    n, base, stride = 200, 5, 3
    return {"src": rng.integers(0, 2**32, base + stride * n + 1, dtype=np.uint64).astype(
                np.uint32),
            "out": np.zeros(n, np.uint32), "wide": np.zeros(n, np.uint64),
            "base": np.uint64(base), "stride": np.uint64(stride),
            "mix": np.uint64(0x1_2345_6789), "count": np.uint32(n)}


def _addr64_ref(v: Inputs) -> dict[str, np.ndarray]:
    n = int(v["count"])
    idx = int(v["base"]) + np.arange(n) * int(v["stride"])
    wide = [((i << 33) + int(v["mix"]) * (i + 1)) % 2**64 for i in range(n)]
    return {"out": v["src"][idx], "wide": np.array(wide, dtype=np.uint64)}


def _divmod_in(rng: np.random.Generator) -> Inputs:
    n = 400
    a = rng.integers(-2**31, 2**31, n, dtype=np.int64)
    b = rng.integers(-2**31, 2**31, n, dtype=np.int64)
    b[n // 2:] = rng.integers(-1000, 1000, n - n // 2)
    b[b == 0] = 7
    bad = (a == -2**31) & (b == -1)
    b[bad] = 3
    a[:3] = [-2**31, 17, -17]
    b[:3] = [3, -5, 5]
    return {"a": a.astype(np.int32), "b": b.astype(np.int32), "q32": np.zeros(2 * n, np.int32),
            "u32": np.zeros(2 * n, np.uint32), "q64": np.zeros(2 * n, np.int64),
            "count": np.uint32(n)}


def _divmod_ref(v: Inputs) -> dict[str, np.ndarray]:
    q32, u32, q64 = [], [], []
    for x, y in zip(v["a"].tolist(), v["b"].tolist()):
        q32 += [_trunc_div(x, y), _trunc_mod(x, y)]
        ux, uy = x % 2**32, y % 2**32
        u32 += [ux // uy, ux % uy]
        wx = x * 77777
        d = (y & 0xFFFF) | 1
        q64 += [_trunc_div(wx, y), (wx % 2**64) % d]
    return {"q32": np.array(q32, np.int32), "u32": np.array(u32, np.uint32),
            "q64": np.array(q64, np.int64)}


def _bits_in(rng: np.random.Generator) -> Inputs:
    n = 640
    a = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    a[:4] = [0, 1, 0x80000000, 0xFFFFFFFF]
    a[4:64] = (np.uint32(1) << rng.integers(0, 32, 60).astype(np.uint32))
    b = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    return {"a": a, "b": b, "out": np.zeros(8 * n, np.uint32), "count": np.uint32(n)}


def _bits_ref(v: Inputs) -> dict[str, np.ndarray]:
    out = []
    for x, y in zip(v["a"].tolist(), v["b"].tolist()):
        r = y & 31
        out += [
            bin(x).count("1"),
            32 - x.bit_length(),
            (x & -x).bit_length() - 1 if x else 32,
            int(f"{x:032b}"[::-1], 2),
            ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF if r else x,
            (x >> (y & 15)) & 0x3FF,
            (x & ~y & 0xFFFFFFFF) | ((x ^ y) >> 7),
            int.from_bytes(x.to_bytes(4, "little"), "big"),
        ]
    return {"out": np.array(out, np.uint32)}


def _conv_in(rng: np.random.Generator) -> Inputs:
    n = 300
    f = (rng.uniform(-1e6, 1e6, n) + rng.uniform(0, 1, n)).astype(np.float32)
    f[:6] = [0.0, -0.0, 0.5, -0.5, 1.99, -1.99]
    k = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    k[:3] = [2**31 - 1, -2**31, 16777217]
    return {"f": f, "n": k, "fi": np.zeros(n, np.int32), "fu": np.zeros(n, np.uint32),
            "if_": np.zeros(n, np.float32), "uf": np.zeros(n, np.float32),
            "d": np.zeros(n, np.float64), "l": np.zeros(n, np.int64), "count": np.uint32(n)}


def _conv_ref(v: Inputs) -> dict[str, np.ndarray]:
    f, k = v["f"], v["n"]
    return {
        "fi": np.trunc(f).astype(np.int32),
        "fu": np.trunc(np.abs(f)).astype(np.uint32),
        "if_": k.astype(np.float32),
        "uf": k.view(np.uint32).astype(np.float32),
        "d": f.astype(np.float64) * 3.0 + k.astype(np.float64),
        "l": np.trunc(f.astype(np.float64) * 1e6).astype(np.int64),
    }


def _subdword_in(rng: np.random.Generator) -> Inputs:
    n = 333
    return {"b_in": rng.integers(0, 256, n).astype(np.uint8),
            "s_in": rng.integers(-2**15, 2**15, n).astype(np.int16),
            "b_out": np.zeros(n, np.uint8), "s_out": np.zeros(n, np.int16),
            "w": np.zeros(n, np.int32), "count": np.uint32(n)}


def _subdword_ref(v: Inputs) -> dict[str, np.ndarray]:
    b, s = v["b_in"].astype(np.int64), v["s_in"].astype(np.int64)
    return {"b_out": ((b + 1) & 0xFF).astype(np.uint8),
            "s_out": ((s * 3) & 0xFFFF).astype(np.uint16).view(np.int16),
            "w": (v["b_in"].view(np.int8).astype(np.int64) + s + (s & 0xFFFF)).astype(np.int32)}


# -- control flow ---------------------------------------------------------------------------

def _collatz_in(rng: np.random.Generator) -> Inputs:
    n = 500
    start = rng.integers(1, 10000, n).astype(np.uint32)
    start[:3] = [1, 27, 97]
    return {"start": start, "steps": np.zeros(n, np.uint32), "limit": np.uint32(1000),
            "count": np.uint32(n)}


def _collatz_ref(v: Inputs) -> dict[str, np.ndarray]:
    limit = int(v["limit"])
    steps = []
    for s in v["start"].tolist():
        n = 0
        while s != 1 and n < limit:
            s = 3 * s + 1 if s & 1 else s >> 1
            n += 1
        steps.append(n)
    return {"steps": np.array(steps, np.uint32)}


def _branches_in(mode: int) -> Callable[[np.random.Generator], Inputs]:
    def make(rng: np.random.Generator) -> Inputs:
        n = 600
        return {"in": rng.integers(-10**6, 10**6, n).astype(np.int32),
                "out": np.zeros(n, np.int32), "mode": np.uint32(mode), "count": np.uint32(n)}
    return make


def _branches_ref(v: Inputs) -> dict[str, np.ndarray]:
    mode = int(v["mode"])
    out = []
    for x in v["in"].tolist():
        if mode == 0:
            r = 3 * x + 1 if x & 1 else _trunc_div(x, 2)
        elif mode == 1:
            m = (x % 2**32) % 3
            r = x if m == 0 else (~x if m == 1 else -x)
        else:
            r = x
        out.append(r)
    return {"out": np.array(out, np.int32)}


# -- LDS, barriers, atomics -----------------------------------------------------------------

def _transpose_in(rng: np.random.Generator) -> Inputs:
    rows, cols = 37, 53
    return {"in": rng.uniform(-1, 1, rows * cols).astype(np.float32),
            "out": np.zeros(rows * cols, np.float32), "rows": np.uint32(rows),
            "cols": np.uint32(cols)}


def _transpose_ref(v: Inputs) -> dict[str, np.ndarray]:
    m = v["in"].reshape(int(v["rows"]), int(v["cols"]))
    return {"out": np.ascontiguousarray(m.T).reshape(-1)}


def _reduce_in(rng: np.random.Generator) -> Inputs:
    n = 1000
    return {"in": rng.integers(0, 2**20, n).astype(np.uint32), "sums": np.zeros(4, np.uint32),
            "count": np.uint32(n)}


def _reduce_ref(v: Inputs) -> dict[str, np.ndarray]:
    data = np.zeros(1024, np.uint64)
    data[:int(v["count"])] = v["in"]
    return {"sums": data.reshape(4, 256).sum(axis=1).astype(np.uint32)}


def _local_reduce_in(rng: np.random.Generator) -> Inputs:
    n = 2000
    return {"in": rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32),
            "maxes": np.zeros(16, np.int32), "count": np.uint32(n)}


def _local_reduce_ref(v: Inputs) -> dict[str, np.ndarray]:
    data = np.full(2048, -2**31, np.int64)
    data[:int(v["count"])] = v["in"]
    return {"maxes": data.reshape(16, 128).max(axis=1).astype(np.int32)}


def _atomics_in(rng: np.random.Generator) -> Inputs:
    n = 3000
    return {"data": rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),
            "hist": np.zeros(17, np.uint32),
            "stats": np.array([0, 0xFFFFFFFF, 0, 0], np.uint32),
            "nbins": np.uint32(17), "count": np.uint32(n)}


def _atomics_ref(v: Inputs) -> dict[str, np.ndarray]:
    d = v["data"]
    hist = np.bincount(d % int(v["nbins"]), minlength=int(v["nbins"])).astype(np.uint32)
    stats = np.array([d.max(), d.min(), np.bitwise_xor.reduce(d), len(d)], np.uint32)
    return {"hist": hist, "stats": stats}


# -- grids ------------------------------------------------------------------------------------

def _grid2d_in(rng: np.random.Generator) -> Inputs:
    w, h = 50, 30
    return {"out": np.zeros(w * h, np.uint32), "counts": np.zeros(w * h, np.uint32),
            "width": np.uint32(w), "height": np.uint32(h)}


def _grid2d_ref(v: Inputs) -> dict[str, np.ndarray]:
    w, h, bx, by = int(v["width"]), int(v["height"]), 16, 8
    y, x = np.mgrid[0:h, 0:w]
    lsx = np.where(x // bx < w // bx, bx, w % bx)
    lsy = np.where(y // by < h // by, by, h % by)
    return {"out": (x * 65536 + y).astype(np.uint32).reshape(-1),
            "counts": (lsx * lsy).astype(np.uint32).reshape(-1)}


def _grid3d_in(rng: np.random.Generator) -> Inputs:
    n = 10 * 7 * 5
    return {"out": np.zeros(n, np.uint32), "groups": np.zeros(n, np.uint32)}


def _grid3d_ref(v: Inputs) -> dict[str, np.ndarray]:
    z, y, x = np.mgrid[0:5, 0:7, 0:10]
    return {"out": (x | y << 10 | z << 20).astype(np.uint32).reshape(-1),
            "groups": (x // 4 | (y // 4) << 10 | (z // 2) << 20).astype(np.uint32).reshape(-1)}


# -- kernarg layout ---------------------------------------------------------------------------

_POD = struct.pack("<ib3xd", -77, -3, 6.0625)


def _mixed_in(rng: np.random.Generator) -> Inputs:
    return {"out": np.zeros(18, np.uint32), "c": np.int8(-5), "uc": np.uint8(200),
            "s": np.int16(-1234), "us": np.uint16(54321), "i": np.int32(-123456789),
            "ui": np.uint32(0xDEADBEEF), "l": np.int64(-0x123456789ABC),
            "ul": np.uint64(0xFEDCBA9876543210), "f": np.float32(3.25),
            "d": np.float64(-2.5e-3), "p": _POD, "v": np.array([1, -2, 3, 40], np.int32)}


def _mixed_ref(v: Inputs) -> dict[str, np.ndarray]:
    def lo_hi(x: int) -> list[int]:
        x %= 2**64
        return [x & 0xFFFFFFFF, x >> 32]

    a, b, c = struct.unpack("<ib3xd", v["p"])
    out = [int(v["c"]) % 2**32, int(v["uc"]), int(v["s"]) % 2**32, int(v["us"]),
           int(v["i"]) % 2**32, int(v["ui"]), *lo_hi(int(v["l"])), *lo_hi(int(v["ul"])),
           int(v["f"].view(np.uint32)), *lo_hi(int(v["d"].view(np.uint64))), a % 2**32,
           b % 2**32, *lo_hi(struct.unpack("<Q", struct.pack("<d", c))[0]),
           int(v["v"].sum()) % 2**32]
    return {"out": np.array(out, np.uint32)}


_FLOAT_TOL = (2e-6, 1e-5)

CASES: tuple[Case, ...] = (
    Case("saxpy", "saxpy", (1000,), (256,), _saxpy_in, _saxpy_ref, ("y",),
         tolerance={"y": (1e-6, 1e-4)}),
    Case("float_math", "float_math", (500,), (64,), _float_in, _float_ref, ("out",),
         tolerance={"out": _FLOAT_TOL}),
    Case("double_math", "double_math", (300,), (128,), _double_in, _double_ref, ("out",),
         tolerance={"out": (1e-13, 1e-12)}),
    Case("int_math", "int_math", (777,), (128,), _int_in, _int_ref, ("out",)),
    Case("addr64", "addr64", (200,), (64,), _addr64_in, _addr64_ref, ("out", "wide")),
    Case("int_divmod", "int_divmod", (400,), (128,), _divmod_in, _divmod_ref,
         ("q32", "u32", "q64")),
    Case("bit_ops", "bit_ops", (640,), (64,), _bits_in, _bits_ref, ("out",)),
    Case("conversions", "conversions", (300,), (256,), _conv_in, _conv_ref,
         ("fi", "fu", "if_", "uf", "d", "l"), tolerance={"d": (1e-15, 0.0)}),
    Case("subdword", "subdword", (333,), (64,), _subdword_in, _subdword_ref,
         ("b_out", "s_out", "w")),
    Case("collatz", "collatz", (500,), (64,), _collatz_in, _collatz_ref, ("steps",)),
    Case("branches_mode0", "branches", (600,), (128,), _branches_in(0), _branches_ref,
         ("out",)),
    Case("branches_mode1", "branches", (600,), (128,), _branches_in(1), _branches_ref,
         ("out",)),
    Case("branches_default", "branches", (600,), (128,), _branches_in(7), _branches_ref,
         ("out",)),
    Case("lds_transpose", "lds_transpose", (64, 48), (16, 16), _transpose_in, _transpose_ref,
         ("out",)),
    Case("lds_reduce", "lds_reduce", (1024,), (256,), _reduce_in, _reduce_ref, ("sums",)),
    Case("local_arg_reduce", "local_arg_reduce", (2048,), (128,), _local_reduce_in,
         _local_reduce_ref, ("maxes",), local={"part": 128 * 4}),
    Case("global_atomics", "global_atomics", (3000,), (256,), _atomics_in, _atomics_ref,
         ("hist", "stats")),
    Case("grid2d", "grid2d", (50, 30), (16, 8), _grid2d_in, _grid2d_ref, ("out", "counts")),
    Case("grid3d", "grid3d", (10, 7, 5), (4, 4, 2), _grid3d_in, _grid3d_ref,
         ("out", "groups")),
    Case("mixed_args", "mixed_args", (64,), (64,), _mixed_in, _mixed_ref, ("out",)),
)


def by_name(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"no corpus case {name!r}; cases: {', '.join(c.name for c in CASES)}")


def run_case(case: Case, device, queue, *, seed: int = 0, timeout: float = 60.0,
             location: str = "gtt") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run `case` on `queue` (AQL or PM4) of `device`; returns (results, expected)."""
    from ...codeobj import LocalMemory

    rng = np.random.default_rng(seed)
    values = case.make_inputs(rng)
    expected = case.reference({k: (v.copy() if isinstance(v, np.ndarray) else v)
                               for k, v in values.items()})
    buffers = {}
    kernel = device.load_kernel(case.kernel)
    try:
        args: dict[str, Any] = {}
        pointers = {a.name for a in kernel.info.explicit_args if a.value_kind == "global_buffer"}
        for name, value in values.items():
            if name in pointers:
                buf = device.alloc(max(value.nbytes, 4), location)
                buf.write(0, value.tobytes())
                buffers[name] = buf
                args[name] = buf
            else:
                args[name] = value
        for name, nbytes in case.local.items():
            args[name] = LocalMemory(nbytes)
        queue.dispatch(kernel, case.grid, case.block, args).wait(timeout=timeout)
        results = {}
        for name in case.outputs:
            ref = values[name]
            raw = buffers[name].read(0, ref.nbytes)
            results[name] = np.frombuffer(raw, dtype=ref.dtype).reshape(ref.shape).copy()
    finally:
        for buf in buffers.values():
            buf.free()
        kernel.free()
    return results, expected


def check(case: Case, results: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Assert every output equals the reference (within the case's tolerance for floats)."""
    for name in case.outputs:
        got, want = results[name], expected[name]
        if name in case.tolerance:
            rtol, atol = case.tolerance[name]
            ok = np.isclose(got, want, rtol=rtol, atol=atol)
        else:
            ok = got == want
        if not ok.all():
            bad = np.flatnonzero(~ok)
            first = bad[:8]
            raise AssertionError(
                f"corpus case {case.name!r} ({case.kernel}, grid {case.grid}, block "
                f"{case.block}): output {name!r} differs at {len(bad)} of {ok.size} elements; "
                f"first at {first.tolist()}: got {got.reshape(-1)[first].tolist()}, expected "
                f"{want.reshape(-1)[first].tolist()}")
