"""The per-queue kernarg ring: regions are handed out in order, reused only after the
dispatch that used them completed, and a full ring waits for the oldest dispatch."""

from __future__ import annotations

from pytest_amdgpu.runtime.kernel import _ArgRing


class FakeQueue:
    def _internal(self, size, location, what):
        return type("Buf", (), {"gpu_address": 0x10000, "size": size})()

    def describe(self):
        return "fake queue"


class FakeCompletion:
    def __init__(self):
        self.done = False
        self.waits = 0

    def wait(self):
        self.waits += 1
        self.done = True


def test_regions_do_not_overlap_live_dispatches():
    ring = _ArgRing(FakeQueue(), 1024)
    live = []
    for _ in range(4):
        off, entry = ring.alloc(200)            # 256 after alignment
        entry[2] = FakeCompletion()
        live.append((off, entry[2]))
    assert [o for o, _ in live] == [0, 256, 512, 768]
    # full: the next allocation waits for the oldest dispatch and reuses its region
    off, entry = ring.alloc(200)
    entry[2] = FakeCompletion()
    assert off == 0 and live[0][1].waits == 1 and live[1][1].waits == 0
    # completed dispatches are reclaimed without waiting
    live[1][1].done = live[2][1].done = True
    off2, e2 = ring.alloc(400)                 # needs two regions: 256..767
    assert off2 == 256 and live[3][1].waits == 0
    e2[2] = FakeCompletion()


def test_everything_done_resets_the_ring():
    ring = _ArgRing(FakeQueue(), 4096)
    entries = []
    for _ in range(10):
        _, e = ring.alloc(64)
        e[2] = FakeCompletion()
        entries.append(e[2])
    for c in entries:
        c.done = True
    off, _ = ring.alloc(4096)
    assert off == 0 and all(c.waits == 0 for c in entries)


def test_a_ring_filled_to_the_oldest_region_waits_for_it():
    """After wrapping, the head can reach the oldest live region exactly: the ring is full
    then, and the next allocation waits for that region's dispatch instead of reusing it."""
    ring = _ArgRing(FakeQueue(), 1024)
    first = []
    for _ in range(4):
        off, entry = ring.alloc(256)
        entry[2] = FakeCompletion()
        first.append(entry[2])
    first[0].done = True
    off, entry = ring.alloc(256)              # wraps into the first region
    entry[2] = FakeCompletion()
    assert off == 0
    off, entry = ring.alloc(256)              # head == oldest live region (256): full
    assert off == 256 and first[1].waits == 1
