"""The scalar atomics of the CP and SDMA (ATOMIC_MEM, SDMA ATOMIC) agree with the lane atomics
of the shader core: combine_scalar's Python-int shortcuts give what the numpy definition gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pytest_amdgpu.sim.atomic_ops import combine, combine_scalar

OPS = ("add", "sub", "and", "or", "xor", "swap", "umin", "umax", "cmpswap", "smin", "smax", "inc",
       "dec", "fadd", "fmin", "fmax")


@given(op=st.sampled_from(OPS), size=st.sampled_from([4, 8]), data=st.data())
def test_scalar_atomic_equals_the_lane_definition(op, size, data):
    top = (1 << (8 * size)) - 1
    old, src = data.draw(st.integers(0, top)), data.draw(st.integers(0, top))
    cmp = data.draw(st.one_of(st.just(old), st.integers(0, top)))
    dt = np.uint32 if size == 4 else np.uint64
    want = combine(op, *(np.array([v], dtype=dt) for v in (old, src, cmp)), dt)
    assert combine_scalar(op, old, src, cmp, size) == int(np.asarray(want, dtype=dt)[0])


def test_scalar_atomic_wraps_at_the_width():
    assert combine_scalar("add", 0xFFFF_FFFF, 2, 0, 4) == 1
    assert combine_scalar("sub", 0, 1, 0, 8) == (1 << 64) - 1
    assert combine_scalar("cmpswap", 5, 9, 5, 4) == 9 and combine_scalar("cmpswap", 5, 9, 4, 4) == 5
