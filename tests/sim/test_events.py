"""WAIT_EVENTS with real blocking, auto-reset, timeouts, and the interrupt path (facts §2.8,
§2.9, §4). A waiting thread must sleep until another thread or the simulated GPU wakes it; the
tests check the order of events (blocked, then released), never durations."""

from __future__ import annotations

import ctypes
import errno as E
import signal
import threading
import time

import pytest

from pytest_amdgpu.kfd.abi import address_of, ffi, lib

from .helpers import GTT, WRITABLE, make_env

SIGNAL, HW_EXCEPTION, MEMORY = 0, 3, 8
UNSIGNALED = 0xFFFFFFFFFFFFFFFF


@pytest.fixture
def env():
    e = make_env()
    yield e
    e.port.close_port()


def _waiters(env, event_id) -> int:
    return len(env.process.events.snapshot()[event_id].waiters)


def _start_wait(env, ids, *, wait_all=False, timeout_ms=0xFFFFFFFF):
    box = {}

    def run():
        try:
            box["result"] = env.kfd.wait_events(event_ids=ids, wait_for_all=wait_all,
                                                timeout_ms=timeout_ms)
        except Exception as exc:  # the test inspects it
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _until(cond, limit=10.0):
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


def test_wait_blocks_until_another_thread_sets_the_event(env):
    ev = env.kfd.create_event(event_type=SIGNAL)
    t, box = _start_wait(env, [ev.event_id])
    _until(lambda: _waiters(env, ev.event_id) == 1)     # registered and sleeping
    t.join(0.05)
    assert t.is_alive() and not box                      # still blocked: nothing set it
    env.kfd.set_event(event_id=ev.event_id)
    t.join(10)
    assert not t.is_alive()
    assert box["result"].status == "complete"
    # auto-reset with a waiter present: the set was consumed by the waiter (set_event)
    assert env.kfd.wait_events(event_ids=[ev.event_id], timeout_ms=0).status == "timeout"


def test_poll_and_finite_timeout(env):
    ev = env.kfd.create_event(event_type=SIGNAL)
    assert env.kfd.wait_events(event_ids=[ev.event_id], timeout_ms=0).status == "timeout"
    assert env.kfd.wait_events(event_ids=[ev.event_id], timeout_ms=20).status == "timeout"
    err, s = _raw_wait(env, [ev.event_id], timeout=0)
    assert (err, s.wait_result) == (0, int(lib.KFD_IOC_WAIT_RESULT_TIMEOUT))


def test_auto_reset_is_consumed_by_the_wait_and_manual_reset_stays(env):
    auto = env.kfd.create_event(event_type=SIGNAL, auto_reset=True)
    manual = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    for e in (auto, manual):
        env.kfd.set_event(event_id=e.event_id)
    assert env.kfd.wait_events(event_ids=[auto.event_id], timeout_ms=0).complete
    assert not env.kfd.wait_events(event_ids=[auto.event_id], timeout_ms=0).complete
    assert env.kfd.wait_events(event_ids=[manual.event_id], timeout_ms=0).complete
    assert env.kfd.wait_events(event_ids=[manual.event_id], timeout_ms=0).complete
    env.kfd.reset_event(event_id=manual.event_id)
    assert not env.kfd.wait_events(event_ids=[manual.event_id], timeout_ms=0).complete


def test_wait_any_and_wait_all(env):
    a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    b = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    env.kfd.set_event(event_id=a.event_id)
    ids = [a.event_id, b.event_id]
    assert env.kfd.wait_events(event_ids=ids, timeout_ms=0).complete
    assert not env.kfd.wait_events(event_ids=ids, wait_for_all=True, timeout_ms=0).complete
    t, box = _start_wait(env, ids, wait_all=True)
    _until(lambda: _waiters(env, b.event_id) == 1)
    assert t.is_alive()
    env.kfd.set_event(event_id=b.event_id)
    t.join(10)
    assert box["result"].complete


def test_empty_wait_completes(env):
    err, s = _raw_wait(env, [], timeout=0)
    assert (err, s.wait_result) == (0, int(lib.KFD_IOC_WAIT_RESULT_COMPLETE))


def test_destroy_while_waiting_fails_the_wait_with_eio(env):
    ev = env.kfd.create_event(event_type=SIGNAL)
    t, box = _start_wait(env, [ev.event_id])
    _until(lambda: _waiters(env, ev.event_id) == 1)
    env.kfd.destroy_event(event_id=ev.event_id)
    t.join(10)
    assert box["error"].errno == E.EIO


def test_wait_result_fail_is_copied_back(env):
    err, s = _raw_wait(env, [1234], timeout=0)
    assert (err, s.wait_result) == (E.EINVAL, int(lib.KFD_IOC_WAIT_RESULT_FAIL))


def test_event_age_tracking(env):
    ev = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    env.kfd.set_event(event_id=ev.event_id)             # age 1 -> 2
    env.kfd.reset_event(event_id=ev.event_id)
    err, s, data = _raw_wait(env, [ev.event_id], timeout=0, ages=[1], data=True)
    assert err == 0 and s.wait_result == int(lib.KFD_IOC_WAIT_RESULT_COMPLETE)   # age differs
    assert int.from_bytes(bytes(ffi.buffer(data, 8)), "little") == 2
    err, s, _ = _raw_wait(env, [ev.event_id], timeout=0, ages=[2], data=True)
    assert s.wait_result == int(lib.KFD_IOC_WAIT_RESULT_TIMEOUT)


def _raw_wait(env, ids, *, timeout, ages=None, data=False):
    n = max(len(ids), 1)
    arr = ffi.new("struct kfd_event_data[]", n)
    for i, eid in enumerate(ids):
        arr[i].event_id = eid
        if ages:
            ffi.cast("uint64_t *", ffi.addressof(arr[i]))[0] = ages[i]
    s = ffi.new("struct kfd_ioctl_wait_events_args *")
    s.events_ptr, s.num_events, s.timeout = address_of(arr), len(ids), timeout
    err = env.port.ioctl(env.kfd.fd, int(lib.AMDKFD_IOC_WAIT_EVENTS), address_of(s))
    return (err, s, arr) if data else (err, s)


# -- the interrupt path (facts §4) ------------------------------------------------------------

def _slots(env):
    page = env.kfd.mmap(offset=0x2 << 62, length=32768)
    return (ctypes.c_uint64 * 4096).from_address(page)


def test_interrupt_signals_the_event_whose_slot_is_written(env):
    a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    b = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    slots = _slots(env)
    dev = env.process.pdds[0].device
    t, box = _start_wait(env, [b.event_id])
    _until(lambda: _waiters(env, b.event_id) == 1)
    slots[b.event_id] = 1                                 # the producer writes, then interrupts
    env.process.signal_interrupt(dev, "cp_eop", b.event_id)
    t.join(10)
    assert box["result"].complete
    assert slots[b.event_id] == UNSIGNALED                # acknowledged: UNSIGNALED written back
    assert not env.kfd.wait_events(event_ids=[a.event_id], timeout_ms=0).complete


def test_interrupt_with_a_wrong_id_scans_every_signaled_slot(env):
    a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    b = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    c = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    slots = _slots(env)
    slots[a.event_id] = 7
    slots[c.event_id] = 7
    env.process.signal_interrupt(env.process.pdds[0].device, "sdma_trap", 3000)
    assert env.kfd.wait_events(event_ids=[a.event_id, c.event_id], wait_for_all=True,
                               timeout_ms=0).complete
    assert not env.kfd.wait_events(event_ids=[b.event_id], timeout_ms=0).complete
    assert slots[a.event_id] == slots[c.event_id] == UNSIGNALED


def test_gfx9_drops_an_end_of_pipe_without_context_id(env):
    a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    slots = _slots(env)
    slots[a.event_id] = 1
    env.process.signal_interrupt(env.process.pdds[0].device, "cp_eop", 0)   # I2: dropped
    assert not env.kfd.wait_events(event_ids=[a.event_id], timeout_ms=0).complete
    env.process.signal_interrupt(env.process.pdds[0].device, "sq_msg", 0)   # scanned
    assert env.kfd.wait_events(event_ids=[a.event_id], timeout_ms=0).complete


def test_gfx1100_scans_on_end_of_pipe_without_context_id():
    env = make_env("gfx1100")
    try:
        a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
        _slots(env)[a.event_id] = 1
        env.process.signal_interrupt(env.process.pdds[0].device, "cp_eop", 0)
        assert env.kfd.wait_events(event_ids=[a.event_id], timeout_ms=0).complete
    finally:
        env.port.close_port()


def test_interrupt_ignores_unsignaled_slots_and_other_event_types(env):
    a = env.kfd.create_event(event_type=SIGNAL)
    m = env.kfd.create_event(event_type=MEMORY)
    env.process.signal_interrupt(env.process.pdds[0].device, "cp_eop", a.event_id)
    assert not env.kfd.wait_events(event_ids=[a.event_id, m.event_id], timeout_ms=0).complete


def test_user_event_page_slots(env):
    env.acquire()
    page = env.alloc(32768, GTT | WRITABLE, cpu=True)
    e = env.kfd.create_event(event_type=SIGNAL, event_page_handle=page.handle)
    vm = env.process.pdd_by_id(page.gpu_id).vm
    vm.write_u64(page.va + 8 * e.event_id, 1)              # a GPU write to the slot
    env.process.signal_interrupt(env.process.pdds[0].device, "cp_eop", e.event_id)
    assert env.kfd.wait_events(event_ids=[e.event_id], timeout_ms=0).complete
    assert ctypes.c_uint64.from_address(page.cpu + 8 * e.event_id).value == UNSIGNALED


def test_hw_exception_event(env):
    from .helpers import Q_SDMA

    hw = env.kfd.create_event(event_type=HW_EXCEPTION)
    env.create_queue(Q_SDMA)
    (q,) = env.process.live_queues()
    dev = env.process.pdds[0].device
    env.process.hw_exception(dev, q, "bad packet")
    r = env.kfd.wait_events(event_ids=[hw.event_id], timeout_ms=0)
    assert r.complete and r.data[0].hw_exception.gpu_id == dev.gpu_id
    assert q.hw_exception == "bad packet"


class _Interrupt(BaseException):
    """What the test's SIGALRM handler raises (a BaseException, like KeyboardInterrupt)."""


def test_a_signal_during_the_wait_gives_back_consumed_auto_reset_events(env):
    """W6: a wait ended by a signal (ERESTARTSYS; EINTR to a handler without SA_RESTART) sets
    again every auto-reset event it had consumed, copies out wait_result FAIL and the remaining
    timeout, and the handler's exception reaches the caller after the ioctl."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    auto = env.kfd.create_event(event_type=SIGNAL, auto_reset=True)
    never = env.kfd.create_event(event_type=SIGNAL, auto_reset=True)
    env.kfd.set_event(event_id=auto.event_id)
    sleeping_in = threading.Condition.wait.__code__

    def handler(signum, frame):
        if frame is not None and frame.f_code is sleeping_in:
            raise _Interrupt                       # the ioctl sleeps: interrupt it
        signal.setitimer(signal.ITIMER_REAL, 0.005)  # not asleep yet: try again shortly

    old = signal.signal(signal.SIGALRM, handler)
    arr = ffi.new("struct kfd_event_data[]", 2)
    arr[0].event_id, arr[1].event_id = auto.event_id, never.event_id
    s = ffi.new("struct kfd_ioctl_wait_events_args *")
    s.events_ptr, s.num_events, s.wait_for_all, s.timeout = address_of(arr), 2, 1, 600_000
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.005)
        with pytest.raises(_Interrupt):
            env.port.ioctl(env.kfd.fd, int(lib.AMDKFD_IOC_WAIT_EVENTS), address_of(s))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert s.wait_result == int(lib.KFD_IOC_WAIT_RESULT_FAIL)
    assert 0 < s.timeout < 600_000                     # rewritten to what was left
    assert _waiters(env, never.event_id) == 0           # the waiters are gone
    # `auto` was consumed when the wait registered on it; the interruption gave it back
    assert env.kfd.wait_events(event_ids=[auto.event_id], timeout_ms=0).complete
    assert not env.kfd.wait_events(event_ids=[auto.event_id], timeout_ms=0).complete


def test_a_timed_out_wait_keeps_what_it_consumed(env):
    """W6 (DERIVED): on TIMEOUT, a wait_all that consumed one auto-reset event keeps it
    consumed (free_waiters undoes only on ERESTARTSYS)."""
    auto = env.kfd.create_event(event_type=SIGNAL, auto_reset=True)
    never = env.kfd.create_event(event_type=SIGNAL, auto_reset=True)
    env.kfd.set_event(event_id=auto.event_id)
    r = env.kfd.wait_events(event_ids=[auto.event_id, never.event_id], wait_for_all=True,
                            timeout_ms=1)
    assert r.status == "timeout"
    assert not env.kfd.wait_events(event_ids=[auto.event_id], timeout_ms=0).complete


@pytest.mark.parametrize("source,high", [("sdma_trap", 0xF000_0000), ("sq_msg", 0xFF00_0000)])
def test_interrupt_id_bits_above_the_source_width_are_ignored(env, source, high):
    """I3: SDMA TRAP carries 28 bits of context id, SQ s_sendmsg 24 (v9/v11): the bits above
    are not part of the id, so the fast path still finds the one event whose slot is written
    and leaves another signaled slot alone (no scan)."""
    a = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    b = env.kfd.create_event(event_type=SIGNAL, auto_reset=False)
    slots = _slots(env)
    slots[a.event_id] = slots[b.event_id] = 1
    env.process.signal_interrupt(env.process.pdds[0].device, source, high | b.event_id)
    assert env.kfd.wait_events(event_ids=[b.event_id], timeout_ms=0).complete
    assert not env.kfd.wait_events(event_ids=[a.event_id], timeout_ms=0).complete
    assert slots[a.event_id] == 1 and slots[b.event_id] == UNSIGNALED
