"""Property test: random sequences of runtime calls — alloc / free / peer map / unmap / queue
create / destroy / event / signal, valid and invalid — raise only typed errors, and the
device's accounting matches a model after every step; closing everything gives back all VRAM
(measured by the driver's AVAILABLE_MEMORY on the peer device of the same process)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_amdgpu.errors import AmdgpuError, UsageError
from pytest_amdgpu.runtime import open_devices

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.sampled_from(["vram", "gtt", "userptr"]),
                  st.integers(1, 3 * 65536)),
        st.tuples(st.just("free"), st.integers(0, 7)),
        st.tuples(st.just("free_again"), st.integers(0, 7)),
        st.tuples(st.just("map_peer"), st.integers(0, 7)),
        st.tuples(st.just("unmap_peer"), st.integers(0, 7)),
        st.tuples(st.just("queue"), st.sampled_from(["pm4", "aql", "sdma", "bogus"]),
                  st.sampled_from([1024, 4096, 3000])),
        st.tuples(st.just("destroy"), st.integers(0, 7)),
        st.tuples(st.just("event"), st.sampled_from(["signal", "memory", "nope"])),
        st.tuples(st.just("signal"), st.booleans()),
    ),
    max_size=14,
)


@pytest.fixture(scope="module")
def pair():
    devs = open_devices("sim", sim="gfx942x2")
    yield devs
    for d in devs:
        d.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_lifecycles(pair, ops):
    dev, peer = pair
    vram_before = peer.kfd.available_memory(gpu_id=dev.gpu_id)
    buffers: list = []
    freed: list = []
    queues: list = []
    others: list = []
    for op in ops:
        try:
            kind = op[0]
            if kind == "alloc":
                buffers.append(dev.alloc(op[2], op[1], owner="prop"))
            elif kind == "free" and buffers:
                b = buffers.pop(op[1] % len(buffers))
                b.free()
                freed.append(b)
            elif kind == "free_again" and freed:
                freed[op[1] % len(freed)].free()            # idempotent
            elif kind == "map_peer" and buffers:
                buffers[op[1] % len(buffers)].map_to(peer)
            elif kind == "unmap_peer" and buffers:
                b = buffers[op[1] % len(buffers)]
                if peer.gpu_id in b.mapped_gpus:
                    b.unmap_from(peer)
                else:
                    with pytest.raises(UsageError):
                        b.unmap_from(peer)
            elif kind == "queue":
                queues.append(dev.create_queue(op[1], ring_size=op[2]))
            elif kind == "destroy" and queues:
                queues.pop(op[1] % len(queues)).destroy()
            elif kind == "event":
                others.append(dev.create_event(op[1]))
            elif kind == "signal":
                others.append(dev.create_signal(0, interrupt=op[1]))
        except AmdgpuError:
            pass                                             # typed: the property allows it
        live = dev.live_objects()
        assert sorted(o.kind for o in live) == sorted(
            ["buffer"] * len(buffers) + ["queue"] * len(queues)
            + [o.kind for o in others])
        assert all(b.mapped_gpus[0] == dev.gpu_id for b in buffers)
    for obj in [*buffers, *queues, *others]:
        obj.close()
    assert dev.live_objects() == []
    assert peer.kfd.available_memory(gpu_id=dev.gpu_id) == vram_before
