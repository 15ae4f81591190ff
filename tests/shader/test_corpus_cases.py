"""The shipped OpenCL corpus (pytest_amdgpu/kernels/corpus) on the shader core alone.

Part G's cases give argument recipes and numpy references written independently of this
core; here each prebuilt code object runs through the test loader (no runtime, no queues), so
a failure points at the shader core.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import TARGETS
from .harness import CodeObject, Device

try:
    from pytest_amdgpu import kernels
    from pytest_amdgpu.kernels.corpus.cases import CASES, check
except Exception:  # pragma: no cover - the corpus is not there yet
    CASES = ()


def _params():
    out = []
    for case in CASES:
        for t in TARGETS:
            out.append(pytest.param(case, t, id=f"{t}-{case.name}"))
    return out or [pytest.param(None, None, id="no-corpus")]


@pytest.mark.parametrize("case,target", _params())
def test_corpus_case(case, target):
    if case is None:
        pytest.skip("corpus not shipped")
    try:
        path = kernels.path(case.kernel, target)
    except Exception as exc:
        pytest.skip(f"no prebuilt {case.kernel} for {target}: {exc}")
    if not path.is_file():
        pytest.skip(f"{path} not built")
    co = CodeObject(path)
    d = Device(target, co)
    info = co.kernels[case.kernel]
    rng = np.random.default_rng(0)
    values = case.make_inputs(rng)
    expected = case.reference({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()})
    explicit = [a for a in info.args if not a[".value_kind"].startswith("hidden_")]
    addrs = {}
    args = []
    dyn = 0
    for a in explicit:
        name = a.get(".name")
        if a[".value_kind"] == "global_buffer":
            addrs[name] = d.buf(np.ascontiguousarray(values[name]))
            args.append(addrs[name])
        elif a[".value_kind"] == "dynamic_shared_pointer":
            dyn += case.local[name]
            args.append(0)
        else:
            v = values[name]
            args.append(v.tobytes() if isinstance(v, (np.generic, np.ndarray)) else v)
    d.launch(case.kernel, case.grid, case.block, *args, dynamic_lds=dyn)
    results = {}
    for name in case.outputs:
        ref = values[name]
        results[name] = d.read(addrs[name], ref.dtype, ref.size).reshape(ref.shape)
    check(case, results, expected)
