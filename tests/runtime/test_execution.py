"""Queues at work: packets consumed, wrap-around, signals from every queue kind, GPU waits,
timeouts that explain themselves and VM faults that end a wait.

Expected memory contents are computed with numpy from the values the test wrote; the
timeout test matches the message against the queue id and the pointers the queue reports and
the packet name the decoder (packets/pm4.py) prints; fault tests compare the address with the
buffer the test made unreachable.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_amdgpu.errors import GPUFaultError, GPUTimeoutError, HWExceptionError, UsageError
from pytest_amdgpu.packets import pm4
from pytest_amdgpu.runtime import open_device, open_devices

from .conftest import needs_cpu_visible_vram

KINDS = ("pm4", "sdma", "aql")


def _write_dword(q, addr: int, value: int) -> None:
    """One 32-bit store through the queue's own packet kind."""
    if q.kind == "pm4":
        q.write_data(addr, [value])
    else:
        q.write(addr, [value])


@pytest.mark.parametrize("kind", ["pm4", "sdma"])
def test_packets_consumed(xdevice, kind):
    dev = xdevice
    q = dev.create_queue(kind, ring_size=4096)
    buf = dev.alloc(4096, "gtt")
    buf.fill(0)
    values = np.arange(1, 17, dtype=np.uint32) * 0x01010101
    if kind == "pm4":
        q.write_data(buf.gpu_address + 64, values.tolist())
    else:
        q.write(buf.gpu_address + 64, values.tolist())
    assert q.write_pointer > 0
    done = dev.create_signal(0)
    q.signal(done, 1)              # the read pointer says "fetched", a signal "executed"
    done.wait(1, timeout=10)
    q.wait_idle(timeout=10)
    assert q.read_pointer == q.write_pointer
    assert np.array_equal(buf.view(np.uint32, 16, offset=64), values)
    assert not buf.view(np.uint32, 16).any()


def test_sdma_copy_and_fill(xdevice):
    dev = xdevice
    needs_cpu_visible_vram(dev)
    q = dev.create_queue("sdma")
    src = dev.alloc(64 * 1024, "vram")
    dst = dev.alloc(64 * 1024, "gtt")
    expected = np.random.default_rng(7).integers(0, 2**32, 16384, dtype=np.uint32)
    src.view(np.uint32)[:] = expected
    dst.fill(0)
    q.copy(dst, src)
    q.fill(dst.gpu_address + 4096, 0xDEADBEEF, 4096)
    expected[1024:2048] = 0xDEADBEEF
    sig = dev.create_signal(0)
    q.signal(sig, 1)
    sig.wait(1, timeout=10)
    assert np.array_equal(dst.view(np.uint32), expected)


@pytest.mark.parametrize("kind", ["pm4", "sdma"])
def test_wrap_around_dword_rings(xdevice, kind):
    """Many more packets than the 1 KiB ring holds: the writer waits for room and pads the
    ring end with NOPs; every write lands."""
    dev = xdevice
    q = dev.create_queue(kind, ring_size=1024)
    buf = dev.alloc(4096, "gtt")
    buf.fill(0)
    n = 300                                    # 300 x 5 dwords = ~6 rings
    for i in range(n):
        _write_dword(q, buf.gpu_address + 4 * i, 0x1000 + i)
    done = dev.create_signal(0)
    q.signal(done, 1)
    done.wait(1, timeout=20)
    q.wait_idle(timeout=20)
    expected = np.zeros(1024, dtype=np.uint32)
    expected[:n] = 0x1000 + np.arange(n)
    assert np.array_equal(buf.view(np.uint32), expected)
    units_per_ring = 1024 // (4 if kind == "pm4" else 1)
    assert q.write_pointer >= 5 * units_per_ring
    assert q.read_pointer == q.write_pointer


def test_wrap_around_aql(xdevice):
    dev = xdevice
    q = dev.create_queue("aql", ring_size=1024)         # 16 slots
    n = 100
    sig = dev.create_signal(n)
    for _ in range(n):
        q.signal(sig)                                      # decrement by one each
    sig.wait(0, cond="==", timeout=20)
    q.wait_idle(timeout=10)
    assert q.read_pointer == q.write_pointer == n


@pytest.mark.parametrize("interrupt", [False, True], ids=["poll", "interrupt"])
@pytest.mark.parametrize("kind", KINDS)
def test_signal_round_trip(xdevice, kind, interrupt):
    dev = xdevice
    q = dev.create_queue(kind)
    if kind == "aql":
        sig = dev.create_signal(3, interrupt=interrupt)
        q.signal(sig)
        assert sig.wait(2, cond="<=", timeout=10) == 2
    else:
        sig = dev.create_signal(0, interrupt=interrupt)
        value = 0x1_2345_6789 if kind == "sdma" else 0x7_0000_0001
        q.signal(sig, value)
        assert sig.wait(value, timeout=10) == value
        assert sig.value == value


@pytest.mark.parametrize("kind", KINDS)
def test_gpu_waits_for_cpu_signal(xdevice, kind):
    """The queue stalls on the signal (WAIT_REG_MEM / POLL_REGMEM / barrier-AND) until the CPU
    sets it; only then does the following write happen."""
    dev = xdevice
    q = dev.create_queue(kind)
    gate = dev.create_signal(1 if kind == "aql" else 0)
    done = dev.create_signal(1 if kind == "aql" else 0)
    buf = dev.alloc(4096, "gtt")
    buf.fill(0)
    if kind == "aql":
        q.wait_for(gate, 0)
        q.signal(done)
    else:
        q.wait_for(gate, 5)
        _write_dword(q, buf.gpu_address, 0xC0FFEE)
        q.signal(done, 1)
    with pytest.raises(GPUTimeoutError):
        done.wait(0 if kind == "aql" else 1, cond="==", timeout=0.2)
    assert buf.view(np.uint32)[0] == 0
    gate.set(0 if kind == "aql" else 5)
    done.wait(0 if kind == "aql" else 1, cond="==", timeout=10)
    if kind != "aql":
        assert buf.view(np.uint32)[0] == 0xC0FFEE


def test_cross_queue_ordering(xdevice):
    """PM4 waits on a signal an SDMA queue sets after its copy; the PM4 write follows."""
    dev = xdevice
    sdma = dev.create_queue("sdma")
    pm4q = dev.create_queue("pm4")
    src = dev.alloc(4096, "gtt")
    dst = dev.alloc(4096, "gtt")
    src.fill(0x11)
    dst.fill(0)
    copied = dev.create_signal(0)
    finished = dev.create_signal(0)
    pm4q.wait_for(copied, 1)
    pm4q.write_data(dst.gpu_address, [0x22222222])
    pm4q.signal(finished, 1)
    sdma.copy(dst, src)
    sdma.signal(copied, 1)
    finished.wait(1, timeout=10)
    assert dst.read(0, 4) == b"\x22" * 4
    assert dst.read(4) == b"\x11" * 4092


def test_timeout_names_queue_and_decodes_ring(xdevice):
    dev = xdevice
    q = dev.create_queue("pm4", ring_size=4096)
    flag = dev.alloc(4096, "gtt")
    flag.fill(0)
    sig = dev.create_signal(0)
    q.wait_reg_mem(flag.gpu_address, 1, function="==")     # never satisfied
    q.signal(sig, 1)
    with pytest.raises(GPUTimeoutError) as err:
        sig.wait(1, timeout=0.3)
    text = str(err.value)
    assert f"queue {q.queue_id}" in text
    assert f"read pointer {q.read_pointer:#x}" in text
    assert f"write pointer {q.write_pointer:#x}" in text
    assert pm4.WaitRegMem.MNEMONIC in text
    assert "=>" in text                                      # the read pointer mark
    assert err.value.queue is q
    q.destroy()                                               # a hung queue still goes


def test_vm_fault_ends_wait(xdevice):
    dev = xdevice
    q = dev.create_queue("pm4")
    sig = dev.create_signal(0)
    gone = dev.alloc(4096, "gtt")
    address = gone.gpu_address
    gone.free()                                 # now unmapped for the GPU
    q.write_data(address, [1])
    q.signal(sig, 1)
    with pytest.raises(GPUFaultError) as err:
        sig.wait(1, timeout=10)
    assert err.value.address == address
    assert err.value.gpu_id == dev.gpu_id
    assert err.value.reason == "NotPresent"
    assert [e.address for e in dev.pending_exceptions()] == [address]
    with pytest.raises(GPUFaultError, match="earlier"):
        sig.wait(1, timeout=10)                   # the queue stays evicted


def test_read_only_fault(xdevice):
    dev = xdevice
    q = dev.create_queue("sdma")
    ro = dev.alloc(4096, "gtt", read_only=True)
    sig = dev.create_signal(0)
    q.write(ro.gpu_address + 16, [5])
    q.signal(sig, 1)
    with pytest.raises(GPUFaultError) as err:
        sig.wait(1, timeout=10)
    assert err.value.reason == "ReadOnly"
    assert err.value.address & ~0xFFF == ro.gpu_address


def test_fault_leaves_other_process_working():
    with open_device("sim") as bad, open_device("sim") as good:
        q = bad.create_queue("pm4")
        sig = bad.create_signal(0)
        q.write_data(0x2000_0000, [1])      # inside the GPUVM aperture, unmapped
        q.signal(sig, 1)
        with pytest.raises(GPUFaultError):
            sig.wait(1, timeout=10)
        q2 = good.create_queue("pm4")
        ok = good.create_signal(0)
        q2.signal(ok, 9)
        assert ok.wait(9, timeout=10) == 9


def test_signal_without_queue_times_out_plainly(device):
    sig = device.create_signal(0)
    with pytest.raises(GPUTimeoutError, match="not submitted on any queue"):
        sig.wait(1, timeout=0.05)
    with pytest.raises(UsageError, match="cond"):
        sig.wait(1, cond="=>")
    sig.set(1)
    assert sig.wait(1, timeout=0) == 1


def test_gpu_wait_value_must_fit_32_bits(device):
    q = device.create_queue("pm4")
    sig = device.create_signal(0)
    with pytest.raises(UsageError, match="32 bits"):
        q.wait_for(sig, 1 << 32)


@pytest.mark.parametrize("interrupt", [False, True], ids=["poll", "interrupt"])
def test_pm4_signal_packets_decode(xdevice, interrupt):
    """What PM4Queue.signal put in the ring, read back with the PM4 decoder: a 64-bit
    RELEASE_MEM of the value at end of pipe (facts-pm4.md §3.3: DATA_SEL 2, EVENT_INDEX 5) and,
    for an interrupt signal, the event id to its mailbox slot with INT_SEL 2 and the id as
    INT_CTXID (facts-kfd.md §4 I2-I4)."""
    dev = xdevice
    q = dev.create_queue("pm4", ring_size=4096)
    q.disable()                                           # keep the engine off the ring
    sig = dev.create_signal(0, interrupt=interrupt)
    value = 0x1234_5678_9ABC_DEF0
    q.signal(sig, value)
    q.signal(sig, 7)
    words = q.ring.view(np.uint32, q.write_pointer)
    packets = [p for _, p, _ in pm4.iter_packets(words, dev.target)]
    per = 2 if interrupt else 1
    assert len(packets) == 2 * per
    for p, v in ((packets[0], value), (packets[per], 7)):
        assert p.MNEMONIC == "RELEASE_MEM"
        assert (p.addr, p.data, p.data_sel, p.int_sel, p.event_index) == (
            sig.value_address, v, 2, 0, 5)
    if interrupt:
        irq = packets[1]
        assert (irq.addr, irq.data, irq.data_sel, irq.int_sel, irq.int_ctxid) == (
            sig.mailbox_address, sig.event_id, 1, 2, sig.event_id)
    q.enable()
    assert sig.wait(7, cond="==", timeout=10) == 7


@pytest.mark.parametrize("interrupt", [False, True], ids=["poll", "interrupt"])
def test_sdma_signal_packets_decode(xdevice, interrupt):
    from pytest_amdgpu.packets import sdma

    dev = xdevice
    q = dev.create_queue("sdma", ring_size=4096)
    q.disable()
    sig = dev.create_signal(0, interrupt=interrupt)
    value = 0xFEDC_BA98_7654_3210
    q.signal(sig, value)
    words = q.ring.view(np.uint32, q.write_pointer // 4)
    packets = [p for _, p, _ in sdma.iter_packets(words, dev.target)]
    lo, hi = packets[0], packets[1]
    assert (lo.MNEMONIC, lo.addr, lo.data) == ("FENCE", sig.value_address, 0x7654_3210)
    assert (hi.MNEMONIC, hi.addr, hi.data) == ("FENCE", sig.value_address + 4, 0xFEDC_BA98)
    if interrupt:
        mail, trap = packets[2], packets[3]
        assert (mail.addr, mail.data) == (sig.mailbox_address, sig.event_id)
        assert (trap.MNEMONIC, trap.int_context) == ("TRAP", sig.event_id)
    else:
        assert len(packets) == 2
    q.enable()
    assert sig.wait(value, cond="==", timeout=10) == value - (1 << 64)   # signed int64


def test_hw_exception_ends_wait(xdevice):
    dev = xdevice
    q = dev.create_queue("pm4", ring_size=4096)
    sig = dev.create_signal(0)
    q.submit(pm4.header(0xEE, 0), 0)            # an opcode no PM4 table defines
    q.signal(sig, 1)
    with pytest.raises(HWExceptionError) as err:
        sig.wait(1, timeout=10)
    text = str(err.value)
    assert f"queue {q.queue_id}" in text and "=>" in text      # the queue's state is attached
    assert [e.kind for e in dev.pending_exceptions()] == ["hw"]


def test_check_exceptions(xdevice):
    dev = xdevice
    dev.check_exceptions()                      # nothing happened: no error
    assert dev.pending_exceptions() == []
    q = dev.create_queue("sdma")
    q.write(0x3000_0000, [1])                   # unmapped: a VM fault
    sig = dev.create_signal(0)
    q.signal(sig, 1)
    deadline = 100
    while not dev.process.poll_exceptions() and deadline:
        deadline -= 1
        sig.wait(0, timeout=0.05)
        time.sleep(0.02)
    with pytest.raises(GPUFaultError) as err:
        dev.check_exceptions()
    assert err.value.address == 0x3000_0000
    with pytest.raises(GPUFaultError, match="earlier"):
        dev.check_exceptions()                  # the device stays faulted for the process


@pytest.mark.parametrize("location", ["vram", "gtt", "userptr"])
def test_gpu_and_cpu_see_the_same_memory(xdevice, location):
    """One address for CPU and GPU: what the CPU writes the SDMA engine copies out, and what
    the engine writes the CPU reads, for every location."""
    dev = xdevice
    if location == "vram":
        needs_cpu_visible_vram(dev)
    q = dev.create_queue("sdma")
    buf = dev.alloc(16384, location)
    staging = dev.alloc(16384, "gtt")
    pattern = np.random.default_rng(3).integers(0, 2**32, 4096, dtype=np.uint32)
    buf.view(np.uint32)[:] = pattern
    staging.fill(0)
    done = dev.create_signal(0)
    q.copy(staging, buf)
    q.fill(buf.gpu_address + 8192, 0x600DF00D, 4096)
    q.signal(done, 1)
    done.wait(1, timeout=10)
    assert np.array_equal(staging.view(np.uint32), pattern)
    expected = pattern.copy()
    expected[2048:3072] = 0x600DF00D
    assert np.array_equal(buf.view(np.uint32), expected)


def test_peer_gpu_reads_mapped_buffer():
    """A buffer of GPU 0 mapped to GPU 1: GPU 1's SDMA engine copies it; unmapped again, the
    same copy faults on GPU 1 (facts-kfd.md §4 I6) with the buffer's address."""
    a, b = open_devices("sim", sim="gfx942x2")
    try:
        src = a.alloc(8192, "vram")
        src.view(np.uint32)[:] = np.arange(2048, dtype=np.uint32)
        dst = b.alloc(8192, "gtt")
        dst.fill(0)
        q = b.create_queue("sdma")
        done = b.create_signal(0)
        src.map_to(b)
        q.copy(dst, src)
        q.signal(done, 1)
        done.wait(1, timeout=10)
        assert np.array_equal(dst.view(np.uint32), np.arange(2048, dtype=np.uint32))
        src.unmap_from(b)
        q.copy(dst, src)
        q.signal(done, 2)
        with pytest.raises(GPUFaultError) as err:
            done.wait(2, timeout=10)
        assert err.value.gpu_id == b.gpu_id
        assert err.value.address & ~0xFFF == src.gpu_address
    finally:
        a.close()
        b.close()


def test_memory_event_carries_fault_data(xdevice):
    """A MEMORY event of the caller's own is set by a VM fault with the exception data
    (facts-kfd.md §2.9 W7, §4 I6): address, GPU and NotPresent."""
    dev = xdevice
    ev = dev.create_event("memory")
    q = dev.create_queue("pm4")
    q.write_data(0x2000_0000, [1])                   # unmapped
    assert ev.wait(timeout=10) is True
    assert ev.data.va == 0x2000_0000
    assert ev.data.gpu_id == dev.gpu_id
    assert ev.data.not_present


@pytest.mark.parametrize("interrupt", [False, True], ids=["poll", "interrupt"])
def test_signal_of_one_gpu_set_by_another(interrupt):
    """Signals (and the event page) are mapped to every GPU of the process: GPU 1 sets a
    signal GPU 0 made, and GPU 0's queue waits on it."""
    a, b = open_devices("sim", sim="gfx942,gfx1100")
    try:
        sig = a.create_signal(0, interrupt=interrupt)
        after = a.create_signal(0)
        qa = a.create_queue("pm4")
        qa.wait_for(sig, 3)
        qa.signal(after, 4)
        b.create_queue("sdma").signal(sig, 3)
        assert after.wait(4, timeout=10) == 4
        assert sig.value == 3
    finally:
        a.close()
        b.close()
