"""What the wrappers make of the driver's answers: typed results decoded from the bytes a
driver writes (offsets from the UAPI header, facts-kfd.md §2), and the driver's conventions
(GET_PROCESS_APERTURES_NEW two-call pattern, n_success copied back on failure)."""

from __future__ import annotations

import errno
import struct

import pytest

from pytest_amdgpu.kfd import KFD, KFDInvalidArgument, KFDIOError, KFDOutOfMemory

from .fakeport import FakeKFDPort, raw


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("K") << 8) | nr


APERTURES_NEW = _iowr(0x14, 16)
ALLOC = _iowr(0x16, 40)
MAP = _iowr(0x18, 24)
CREATE_EVENT = _iowr(0x08, 32)
WAIT_EVENTS = _iowr(0x0C, 24)
CLOCKS = _iowr(0x05, 40)
SVM = _iowr(0x20, 24)                 # struct kfd_ioctl_svm_args without attributes
SVM_2_ATTRS = _iowr(0x20, 24 + 2 * 8)  # ... followed by two 8-byte attributes (libhsakmt)
XNACK = _iowr(0x21, 4)


@pytest.fixture
def port():
    return FakeKFDPort((1, 17))


@pytest.fixture
def kfd(port):
    return KFD(port)


def test_apertures_two_call_pattern(port, kfd):
    calls = []

    def handler(arg):
        b = raw(arg, 16)
        ptr, n = struct.unpack_from("<QI", b, 0)
        calls.append(n)
        if n == 0:
            struct.pack_into("<I", b, 8, 2)
            return 0
        entries = raw(ptr, 56 * n)
        for i, gpu_id in enumerate((0x1111, 0x2222)):
            # v9 apertures (facts-kfd.md §2.2): lds 1<<48, scratch 2<<48, gpuvm from 16 MiB
            struct.pack_into("<6QII", entries, 56 * i, 1 << 48, (1 << 48) | 0xFFFFFFFF,
                             2 << 48, (2 << 48) | 0xFFFFFFFF, 0x1000000, (1 << 47) - 1,
                             gpu_id, 0)
        struct.pack_into("<I", b, 8, 2)
        return 0

    port.handlers[APERTURES_NEW] = handler
    aps = kfd.get_process_apertures()
    assert calls == [0, 2]
    assert [a.gpu_id for a in aps] == [0x1111, 0x2222]
    assert aps[1].scratch_base == 2 << 48 and aps[1].gpuvm_base == 0x1000000
    assert aps[0].lds_limit == (1 << 48) | 0xFFFFFFFF and aps[0].gpuvm_limit == (1 << 47) - 1


def test_no_gpus_gives_no_apertures(port, kfd):
    assert kfd.get_process_apertures() == []


def test_alloc_result(port, kfd):
    def handler(arg):
        b = raw(arg, 40)
        va, size, _, _, gpu_id, flags = struct.unpack_from("<QQQQII", b, 0)
        assert (va, size, gpu_id, flags) == (0x7F0000000000, 0x200000, 0x1234, 0x80000001)
        struct.pack_into("<QQ", b, 16, (0x1234 << 32) | 3, 0xABC000)  # handle, mmap_offset
        return 0

    port.handlers[ALLOC] = handler
    a = kfd.alloc_memory(gpu_id=0x1234, size=0x200000, flags=-(1 << 31) | 1,
                         va_addr=0x7F0000000000)
    assert a.handle == (0x1234 << 32) | 3 and a.mmap_offset == 0xABC000
    assert (a.va_addr, a.size, a.flags, a.gpu_id) == (0x7F0000000000, 0x200000, 0x80000001,
                                                      0x1234)


def test_map_reports_n_success_and_keeps_it_on_failure(port, kfd):
    def partial(arg):
        b = raw(arg, 24)
        _handle, ptr, n_devices, n_success = struct.unpack_from("<QQII", b, 0)
        ids = struct.unpack_from(f"<{n_devices}I", raw(ptr, 4 * n_devices), 0)
        assert ids == (1, 2, 3) and n_success == 0
        struct.pack_into("<I", b, 20, 2)   # two mapped, the third failed (copied back, §2.0)
        return errno.EINVAL

    port.handlers[MAP] = partial
    with pytest.raises(KFDInvalidArgument) as info:
        kfd.map_memory(handle=7, gpu_ids=[1, 2, 3])
    assert info.value.n_success == 2
    assert "2 of 3 devices" in str(info.value)

    def full(arg):
        b = raw(arg, 24)
        (n_devices,) = struct.unpack_from("<I", b, 16)
        struct.pack_into("<I", b, 20, n_devices)
        return 0

    port.handlers[MAP] = full
    assert kfd.map_memory(handle=7, gpu_ids=[1, 2, 3]) == 3


def test_map_unknown_handle_is_out_of_memory(port, kfd):
    port.handlers[MAP] = lambda arg: errno.ENOMEM   # facts-kfd.md §2.5 row 6
    with pytest.raises(KFDOutOfMemory, match="handle is unknown"):
        kfd.map_memory(handle=0xDEAD, gpu_ids=[1])


def _event_port(port, event_id, etype_out):
    def handler(arg):
        b = raw(arg, 32)
        _, _, etype, auto_reset, node_id = struct.unpack_from("<QIIII", b, 0)
        etype_out.append((etype, auto_reset, node_id))
        struct.pack_into("<QI", b, 0, 0x8000000000000000 if etype == 0 else 0, event_id)
        struct.pack_into("<II", b, 24, event_id, event_id)
        return 0

    port.handlers[CREATE_EVENT] = handler


def test_create_event(port, kfd):
    seen = []
    _event_port(port, 1, seen)
    ev = kfd.create_event(event_type=0, auto_reset=True)
    assert seen == [(0, 1, 0)]
    assert (ev.event_id, ev.trigger_data, ev.slot_index) == (1, 1, 1)
    assert ev.page_offset == 0x8000000000000000


def test_wait_decodes_memory_exception_data(port, kfd):
    _event_port(port, 0x40000000, [])
    ev = kfd.create_event(event_type=8, auto_reset=False)

    def handler(arg):
        b = raw(arg, 24)
        ptr, n, wait_all, timeout = struct.unpack_from("<QIII", b, 0)
        assert (n, wait_all, timeout) == (1, 0, 0xFFFFFFFF)
        entry = raw(ptr, 48)
        assert struct.unpack_from("<I", entry, 40)[0] == 0x40000000   # event_id @40
        # memory_exception_data: NotPresent, ReadOnly, NoExecute, imprecise, va, gpu_id,
        # ErrorType (facts-kfd.md §2.9 W7, I6)
        struct.pack_into("<IIIIQII", entry, 0, 1, 1, 0, 0, 0x7F0000123000, 0x1234, 0)
        struct.pack_into("<I", b, 20, 0)   # COMPLETE
        return 0

    port.handlers[WAIT_EVENTS] = handler
    res = kfd.wait_events(event_ids=[ev.event_id], timeout_ms=None)
    assert res.status == "complete" and res.complete
    (d,) = res.data
    assert d.event_id == 0x40000000 and d.event_type == 8 and d.hw_exception is None
    m = d.memory
    assert (m.va, m.gpu_id, m.not_present, m.read_only, m.no_execute, m.imprecise) == \
        (0x7F0000123000, 0x1234, True, True, False, False)
    assert m.reason == "read_only"


def test_wait_decodes_hw_exception_for_unknown_events(port, kfd):
    def handler(arg):
        b = raw(arg, 24)
        (ptr,) = struct.unpack_from("<Q", b, 0)
        struct.pack_into("<IIII", raw(ptr, 48), 0, 0, 1, 1, 0x4321)  # reset_cause ECC
        return 0

    port.handlers[WAIT_EVENTS] = handler
    (d,) = kfd.wait_events(event_ids=[77], timeout_ms=10).data
    assert d.event_type is None
    assert d.hw_exception.reset_cause == 1 and d.hw_exception.memory_lost
    assert d.hw_exception.gpu_id == 0x4321


def test_wait_timeout_and_failure(port, kfd):
    def timeout(arg):
        struct.pack_into("<I", raw(arg, 24), 20, 1)
        return 0

    port.handlers[WAIT_EVENTS] = timeout
    res = kfd.wait_events(event_ids=[1], timeout_ms=5)
    assert res.status == "timeout" and res.data == ()

    def destroyed(arg):
        struct.pack_into("<I", raw(arg, 24), 20, 2)   # FAIL, EIO: event destroyed (§2.9 W5)
        return errno.EIO

    port.handlers[WAIT_EVENTS] = destroyed
    with pytest.raises(KFDIOError, match="destroyed") as info:
        kfd.wait_events(event_ids=[1], timeout_ms=5)
    assert info.value.wait_result == 2


def test_wait_event_ages_written_to_the_union(port, kfd):
    _event_port(port, 3, [])
    ev = kfd.create_event(event_type=0)

    def handler(arg):
        (ptr,) = struct.unpack_from("<Q", raw(arg, 24), 0)
        entry = raw(ptr, 48)
        assert struct.unpack_from("<Q", entry, 0)[0] == 5   # last_event_age in
        struct.pack_into("<Q", entry, 0, 6)                  # the new age out
        return 0

    port.handlers[WAIT_EVENTS] = handler
    (d,) = kfd.wait_events(event_ids=[ev.event_id], timeout_ms=0, last_event_ages=[5]).data
    assert d.last_event_age == 6 and d.memory is None


def test_clock_counters(port, kfd):
    def handler(arg):
        struct.pack_into("<QQQQ", raw(arg, 40), 0, 111, 222, 333, 1_000_000_000)
        return 0

    port.handlers[CLOCKS] = handler
    c = kfd.get_clock_counters(gpu_id=1)
    assert (c.gpu, c.cpu, c.system, c.system_freq) == (111, 222, 333, 1_000_000_000)


def test_svm_attributes_follow_the_args(port, kfd):
    def handler(arg):
        b = raw(arg, 24 + 16)
        start, size, op, nattr = struct.unpack_from("<QQII", b, 0)
        assert (start, size, op, nattr) == (0x10000, 0x4000, 1, 2)
        assert struct.unpack_from("<IIII", b, 24) == (0, 0, 2, 0x1234)
        struct.pack_into("<I", b, 28, 0x5678)   # GET_ATTR fills the preferred location
        return 0

    # the request carries the attributes' size: the driver copies exactly that many bytes in
    # and out (kfd_ioctl), so a request of the bare struct would leave the attributes behind
    port.handlers[SVM_2_ATTRS] = handler
    out = kfd.svm(op=1, start_addr=0x10000, size=0x4000, attrs=[(0, 0), (2, 0x1234)])
    assert port.requests[-1] == SVM_2_ATTRS
    assert [(a.type, a.value) for a in out] == [(0, 0x5678), (2, 0x1234)]


def test_svm_without_attributes_sends_the_bare_struct(port, kfd):
    assert kfd.svm(op=0, start_addr=0x10000, size=0x1000) == []
    assert port.requests[-1] == SVM


def test_xnack_query(port, kfd):
    def handler(arg):
        b = raw(arg, 4)
        assert struct.unpack_from("<i", b, 0)[0] == -1
        struct.pack_into("<i", b, 0, 1)
        return 0

    port.handlers[XNACK] = handler
    assert kfd.set_xnack_mode(enabled=None) is True


def test_svm_attributes_reach_a_driver_that_checks_the_request_size():
    # the simulated driver copies only the bytes the request encodes, as kfd_ioctl does: a
    # GET_ATTR whose request lacked the attributes' size would fail (EINVAL) or read nothing
    from pytest_amdgpu.kfd.abi import lib
    from pytest_amdgpu.sim.port import SimPort

    port = SimPort(sim="gfx942")
    try:
        kfd = KFD(port)
        rw, anon = int(lib.PROT_READ | lib.PROT_WRITE), int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS)
        addr = port.mmap(0, 0x4000, rw, anon, -1, 0)
        (loc,) = kfd.svm(op=int(lib.KFD_IOCTL_SVM_OP_GET_ATTR), start_addr=addr, size=0x2000,
                         attrs=[(int(lib.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC), 0)])
        # a range nobody set a preferred location for reports UNDEFINED (kfd_ioctl.h)
        assert loc.value == int(lib.KFD_IOCTL_SVM_LOCATION_UNDEFINED)
    finally:
        port.close_port()
