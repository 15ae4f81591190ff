"""The packet processor's kernel dispatch reader (compiled from D's layout) reads what D's
decoder reads, and leaves reserved values to D's decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.sim.gpu.fastdecode import AQL_DISPATCH_FIELDS, read_kernel_dispatch

U32, U64 = (st.integers(0, (1 << b) - 1) for b in (32, 64))
WG = st.integers(1, 0xFFFF)                   # the builder refuses workgroup sizes of 0


@given(dims=st.sampled_from([1, 2, 3]), wg=st.tuples(WG, WG, WG), grid=st.tuples(U32, U32, U32),
       private=U32, group=U32, kobj=U64, kernarg=U64, signal=U64,
       scope=st.sampled_from([A.FenceScope.NONE, A.FenceScope.AGENT, A.FenceScope.SYSTEM]))
def test_reader_matches_the_decoder(dims, wg, grid, private, group, kobj, kernarg, signal, scope):
    pkt = A.KernelDispatchPacket(
        dimensions=dims, workgroup_size_x=wg[0], workgroup_size_y=wg[1], workgroup_size_z=wg[2],
        grid_size_x=grid[0], grid_size_y=grid[1], grid_size_z=grid[2],
        private_segment_size=private, group_segment_size=group, kernel_object=kobj,
        kernarg_address=kernarg, completion_signal=signal, acquire_fence_scope=scope)
    raw = pkt.encode()
    decoded, _ = A.decode(raw, 0)
    fields = read_kernel_dispatch(memoryview(raw).cast("I"))
    assert tuple(fields) == tuple(getattr(decoded, n) for n in AQL_DISPATCH_FIELDS)


def test_reserved_dimensions_are_left_to_the_decoder():
    raw = bytearray(A.KernelDispatchPacket(dimensions=1, workgroup_size_x=1, grid_size_x=1,
                                           kernel_object=64).encode())
    raw[2] &= ~0x3                                  # setup.dimensions = 0 (reserved)
    with pytest.raises(LookupError):
        read_kernel_dispatch(memoryview(bytes(raw)).cast("I"))
