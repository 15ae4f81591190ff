"""Property test: random sequences of driver calls with valid and invalid arguments.

Every call goes through the typed KFD wrappers; the only acceptable failure is a typed
KFDError other than EIO (the simulator's "internal error"). After every step (hypothesis runs
each @invariant after every rule) the driver's own bookkeeping is consistent
(`check_invariants`: VM mappings and BO attachments agree, no overlap, queue/doorbell/refcount
tables) and its observable state matches a model of what succeeded, computed here from the
kernel's rules: VRAM charged as amdgpu_amdkfd_reserve_mem_limit charges it (GTT before VRAM,
AQL_QUEUE_MEM halved, page aligned), AVAILABLE_MEMORY as amdgpu_amdkfd_get_available_memory
computes it, signal events signaled/consumed as kfd_events.c does, and queues evicted for
good on a GPU that reported a VM fault (kfd_dqm_evict_pasid, create_queue_cpsch).
"""

from __future__ import annotations

import errno
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pytest_amdgpu.kfd import KFDError  # noqa: E402
from pytest_amdgpu.sim.memory import VMFault  # noqa: E402

from .helpers import (  # noqa: E402
    AQL_MEM,
    DOORBELL,
    EXECUTABLE,
    GTT,
    PAGE,
    PUBLIC,
    Q_AQL,
    Q_ENG,
    Q_PM4,
    Q_SDMA,
    Q_XGMI,
    VRAM,
    WRITABLE,
    make_env,
)

VRAM_SIZE = 96 << 20
MIB2 = 2 << 20                  # VRAM_AVAILABLITY_ALIGN (amdgpu_amdkfd_gpuvm.c)
# reserved_for_pt = ESTIMATE_PT_SIZE(RAM) = max(RAM >> 14, AMDGPU_VM_RESERVED_VRAM = 8 MiB)
RESERVED_FOR_PT = max((os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) >> 14, 8 << 20)
SIGNAL, MEMORY = 0, 8
SIZES = st.sampled_from([0, 1, PAGE, 3 * PAGE, 1 << 20, 40 << 20, 8192])
FLAGS = st.sampled_from([
    VRAM | WRITABLE, VRAM, GTT | WRITABLE | EXECUTABLE, VRAM | GTT | WRITABLE,
    VRAM | PUBLIC | WRITABLE, GTT | AQL_MEM | WRITABLE, DOORBELL | WRITABLE, WRITABLE, 0,
])
QUEUE_FAULTS = st.sampled_from([
    None, None, None, "percentage", "priority", "ring_pow2", "ctl_stack", "eop_size",
    "no_ctx", "bad_gpu", "bad_type", "engine",
])


class DriverMachine(RuleBasedStateMachine):
    """One process on a gfx942 + gfx1100 machine with little VRAM."""

    @initialize()
    def setup(self):
        self.env = make_env("gfx942,gfx1100", vram_size=VRAM_SIZE)
        self.gids = [self.env.acquire(0), self.env.acquire(1)]
        self.bos: dict[int, tuple] = {}        # handle -> (allocation, mapped gpu ids)
        self.queues: dict[int, int] = {}       # queue id -> gpu index
        self.events: dict[int, list] = {}      # event id -> [type, auto_reset, signaled]
        self.faulted: set[int] = set()         # gpu indexes that reported a VM fault
        self.qkw = {}
        self.base_vram: dict[int, list[int]] = {0: [], 1: []}   # the queue buffers' VRAM BOs
        for gi in (0, 1):
            for kind in (Q_PM4, Q_AQL, Q_SDMA):
                bufs = self.env.queue_buffers(kind, gpu=gi)
                self.qkw[(gi, kind)] = dict(bufs["kwargs"])
                # helpers.Env.alloc's default flags (VRAM | WRITABLE) for the ring and EOP
                self.base_vram[gi] += [_page_align(bufs[k].size) for k in ("ring", "eop")
                                       if k in bufs]
        self.fixed = {h.handle for h in self.env.process.live_bos(include_kernel=True)}
        for etype, auto in ((SIGNAL, True), (SIGNAL, False), (MEMORY, True)):
            e = self.env.kfd.create_event(event_type=etype, auto_reset=auto)
            self.events[e.event_id] = [etype, auto, False]

    def teardown(self):
        env = getattr(self, "env", None)
        if env is not None:
            env.port.close_port()

    def call(self, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except KFDError as exc:
            assert exc.errno and exc.errno != errno.EIO, exc     # EIO: a simulator bug
            return None

    # -- memory ------------------------------------------------------------------------------
    @rule(gpu=st.integers(0, 1), size=SIZES, flags=FLAGS,
          va_kind=st.sampled_from(["fresh", "fresh", "reuse", "unaligned"]))
    def alloc(self, gpu, size, flags, va_kind):
        env = self.env
        span = max(size, PAGE)
        va = env.reserve_va(span * 2)
        if va_kind == "reuse" and self.bos:
            va = next(iter(self.bos.values()))[0].va_addr
        elif va_kind == "unaligned":
            va += 8
        a = self.call(env.kfd.alloc_memory, gpu_id=self.gids[gpu], size=size, flags=flags,
                      va_addr=va)
        if a is not None:
            assert a.handle not in self.bos
            self.bos[a.handle] = (a, set())

    @precondition(lambda self: self.bos)
    @rule(data=st.data(), gpus=st.lists(st.integers(0, 2), min_size=0, max_size=3))
    def map(self, data, gpus):
        handle = data.draw(st.sampled_from(sorted(self.bos)))
        ids = [self.gids[g] if g < 2 else 0xBEEF for g in gpus]
        try:
            self.env.kfd.map_memory(handle=handle, gpu_ids=ids)
            self.bos[handle][1].update(ids)
        except KFDError as exc:
            done = getattr(exc, "n_success", 0)
            self.bos[handle][1].update(ids[:done])

    @precondition(lambda self: self.bos)
    @rule(data=st.data(), gpus=st.lists(st.integers(0, 2), min_size=1, max_size=2))
    def unmap(self, data, gpus):
        handle = data.draw(st.sampled_from(sorted(self.bos)))
        ids = [self.gids[g] if g < 2 else 0xBEEF for g in gpus]
        try:
            self.env.kfd.unmap_memory(handle=handle, gpu_ids=ids)
            self.bos[handle][1].difference_update(ids)
        except KFDError as exc:
            self.bos[handle][1].difference_update(ids[:getattr(exc, "n_success", 0)])

    @rule(data=st.data(), bogus=st.booleans())
    def free(self, data, bogus):
        bogus = bogus or not self.bos
        handle = (self.gids[0] << 32) | 999 if bogus else \
            data.draw(st.sampled_from(sorted(self.bos)))
        try:
            self.env.kfd.free_memory(handle=handle)
        except KFDError as exc:
            if bogus:
                assert exc.errno == errno.EINVAL, exc
            else:
                assert self.bos[handle][1] and exc.errno == errno.EBUSY, exc
            return
        assert not bogus and not self.bos[handle][1], "freed a mapped or unknown BO"
        del self.bos[handle]

    # -- queues ------------------------------------------------------------------------------
    @rule(gpu=st.integers(0, 1), kind=st.sampled_from([Q_PM4, Q_AQL, Q_SDMA, Q_XGMI, Q_ENG]),
          fault=QUEUE_FAULTS)
    def create_queue(self, gpu, kind, fault):
        base = self.qkw[(gpu, Q_SDMA if kind in (Q_XGMI, Q_ENG) else kind)]
        kw = dict(base, queue_type=kind)
        if kind == Q_ENG:
            kw["sdma_engine_id"] = 1
        if fault == "percentage":
            kw["percentage"] = 150
        elif fault == "priority":
            kw["priority"] = 16
        elif fault == "ring_pow2":
            kw["ring_size"] = 3 * 1024
        elif fault == "ctl_stack" and "ctl_stack_size" in kw:
            kw["ctl_stack_size"] += PAGE
        elif fault == "eop_size" and "eop_buffer_size" in kw:
            kw["eop_buffer_size"] = 2 * PAGE
        elif fault == "no_ctx":
            kw["ctx_save_restore_address"] = 0
        elif fault == "bad_gpu":
            kw["gpu_id"] = 0x1234
        elif fault == "bad_type":
            kw["queue_type"] = 7
        elif fault == "engine":
            kw["queue_type"], kw["sdma_engine_id"] = Q_ENG, 40
        info = self.call(self.env.kfd.create_queue, **kw)
        if info is not None:
            assert info.queue_id not in self.queues
            self.queues[info.queue_id] = gpu

    @rule(data=st.data(), bogus=st.booleans())
    def destroy_queue(self, data, bogus):
        bogus = bogus or not self.queues
        qid = 1000 if bogus else data.draw(st.sampled_from(sorted(self.queues)))
        try:
            self.env.kfd.destroy_queue(queue_id=qid)
        except KFDError as exc:
            assert qid not in self.queues and exc.errno == errno.EINVAL, exc
        self.queues.pop(qid, None)

    @rule(gpu=st.integers(0, 1))
    def vm_fault(self, gpu):
        """The GPU reports a fault of this process, as an engine does (facts §4 I6)."""
        p = self.env.process
        pdd = p.pdd_by_id(self.gids[gpu])
        try:
            pdd.vm.read(0x7000_0000_0000, 4)       # never mapped by this test
        except VMFault as fault:
            p.vm_fault(pdd.device, fault)
        else:
            raise AssertionError("a read of unmapped GPU memory did not fault")
        self.faulted.add(gpu)
        for ev in self.events.values():
            if ev[0] == MEMORY:
                ev[2] = True

    # -- events ------------------------------------------------------------------------------
    @rule(etype=st.sampled_from([0, 0, 3, 8, 5, 42]), auto=st.booleans())
    def create_event(self, etype, auto):
        e = self.call(self.env.kfd.create_event, event_type=etype, auto_reset=auto)
        if e is not None:
            assert e.event_id not in self.events
            self.events[e.event_id] = [etype, auto, False]

    @rule(data=st.data(), ops=st.lists(st.sampled_from(["set", "reset", "wait", "wait",
                                                         "destroy"]), min_size=1, max_size=5),
          bogus=st.sampled_from([False, False, False, True]))
    def event_ops(self, data, ops, bogus):
        """A few operations on one event. SET/RESET only on SIGNAL events (else EINVAL); a poll
        completes iff the event is signaled and consumes an auto-reset one (kfd_set_event,
        init_event_waiter)."""
        bogus = bogus or not self.events
        eid = 77777 if bogus else data.draw(st.sampled_from(sorted(self.events)))
        kfd = self.env.kfd
        for op in ops:
            model = self.events.get(eid)
            try:
                if op == "set":
                    kfd.set_event(event_id=eid)
                    model[2] = True
                elif op == "reset":
                    kfd.reset_event(event_id=eid)
                    model[2] = False
                elif op == "wait":
                    r = kfd.wait_events(event_ids=[eid], timeout_ms=0)
                    assert r.complete == model[2], (eid, model, r)
                    if model[1]:
                        model[2] = False
                else:
                    kfd.destroy_event(event_id=eid)
                    del self.events[eid]
            except KFDError as exc:
                assert exc.errno == errno.EINVAL, exc
                assert model is None or (op in ("set", "reset") and model[0] != SIGNAL), \
                    (op, eid, model, exc)
            else:
                assert model is not None and (op not in ("set", "reset") or model[0] == SIGNAL)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def driver_is_consistent(self):
        env = getattr(self, "env", None)
        if env is None:
            return
        p = env.process
        p.check_invariants()
        live = {bo.handle: bo for bo in p.live_bos(include_kernel=True)}
        assert set(live) - self.fixed - {h for h in live if live[h].kernel} == set(self.bos)
        for h, (_a, mapped) in self.bos.items():
            assert set(live[h].mappings) == mapped, (live[h], mapped)
        queues = {q.queue_id: q for q in p.live_queues()}
        assert set(queues) == set(self.queues)
        for qid, gpu in self.queues.items():
            assert queues[qid].gpu_id == self.gids[gpu]
            assert queues[qid].evicted == (gpu in self.faulted), (queues[qid], self.faulted)
            assert not (queues[qid].active and gpu in self.faulted)
        assert {e.event_id for e in p.live_events()} == set(self.events)
        for gpu, gid in enumerate(self.gids):
            charged = self.base_vram[gpu] + [
                _page_align(a.size >> 1 if a.flags & AQL_MEM else a.size)
                for a, _ in self.bos.values()
                if a.gpu_id == gid and a.flags & VRAM and not a.flags & GTT]
            dev = p.pdd_by_id(gid).device
            assert dev.vram_used == sum(charged), (gpu, dev.vram_used, charged)
            avail = VRAM_SIZE - sum(_align(c, MIB2) for c in charged) - RESERVED_FOR_PT
            assert env.kfd.available_memory(gpu_id=gid) == max(avail, 0) // MIB2 * MIB2


def _page_align(x: int) -> int:
    return (x + PAGE - 1) // PAGE * PAGE


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


DriverMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestDriverProperties = DriverMachine.TestCase
