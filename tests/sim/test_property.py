"""Property test: random sequences of driver calls with valid and invalid arguments.

Every call goes through the typed KFD wrappers; the only acceptable failure is a typed
KFDError. After every step the simulated driver's invariants hold: VRAM accounting equals the
live VRAM BOs, the VM mappings and the BO attachments agree, no overlap, queue/doorbell/
refcount bookkeeping is consistent, and the driver's tables match a model of what succeeded.
"""

from __future__ import annotations

import errno

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
        self.bos: dict[int, tuple] = {}        # handle -> (buf, mapped gpu ids)
        self.queues: set[int] = set()
        self.events: set[int] = set()
        self.qkw = {}
        for gi in (0, 1):
            for kind in (Q_PM4, Q_AQL, Q_SDMA):
                self.qkw[(gi, kind)] = dict(self.env.queue_buffers(kind, gpu=gi)["kwargs"])
        self.fixed = {h.handle for h in self.env.process.live_bos(include_kernel=True)}

    def teardown(self):
        env = getattr(self, "env", None)
        if env is not None:
            env.port.close_port()

    def call(self, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except KFDError as exc:
            assert exc.errno, exc
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
            self.queues.add(info.queue_id)

    @rule(data=st.data(), bogus=st.booleans())
    def destroy_queue(self, data, bogus):
        bogus = bogus or not self.queues
        qid = 1000 if bogus else data.draw(st.sampled_from(sorted(self.queues)))
        try:
            self.env.kfd.destroy_queue(queue_id=qid)
        except KFDError as exc:
            assert qid not in self.queues and exc.errno == errno.EINVAL, exc
        self.queues.discard(qid)

    # -- events ------------------------------------------------------------------------------
    @rule(etype=st.sampled_from([0, 0, 3, 8, 5, 42]), auto=st.booleans())
    def create_event(self, etype, auto):
        e = self.call(self.env.kfd.create_event, event_type=etype, auto_reset=auto)
        if e is not None:
            self.events.add(e.event_id)

    @rule(data=st.data(), op=st.sampled_from(["set", "reset", "destroy", "wait"]),
          bogus=st.booleans())
    def event_op(self, data, op, bogus):
        bogus = bogus or not self.events
        eid = 77777 if bogus else data.draw(st.sampled_from(sorted(self.events)))
        kfd = self.env.kfd
        if op == "set":
            self.call(kfd.set_event, event_id=eid)
        elif op == "reset":
            self.call(kfd.reset_event, event_id=eid)
        elif op == "wait":
            self.call(kfd.wait_events, event_ids=[eid], timeout_ms=0)
        else:
            try:
                kfd.destroy_event(event_id=eid)
            except KFDError as exc:
                assert eid not in self.events and exc.errno == errno.EINVAL, exc
            self.events.discard(eid)

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
        assert {q.queue_id for q in p.live_queues()} == self.queues
        assert {e.event_id for e in p.live_events()} == self.events
        for pdd in p.pdds:
            dev = pdd.device
            vram = sum(bo.bo_size for proc in env.port.machine.processes
                       for bo in proc.memory.all_bos()
                       if bo.device is dev and bo.kind == "vram")
            assert dev.vram_used == vram
            assert dev.vram_used <= dev.vram_size
            assert env.kfd.available_memory(gpu_id=dev.gpu_id) <= dev.vram_size - dev.vram_used


DriverMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestDriverProperties = DriverMachine.TestCase
