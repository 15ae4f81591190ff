"""Every typed wrapper reaches the real ioctl syscall with its request and struct.

/dev/null answers any ioctl with ENOTTY, so a wrapper that builds its struct, crosses the
syscall boundary and maps the errno must raise KFDNotSupported naming its ioctl. The recording
port snapshots the struct at the address handed to the kernel, which shows the values the
caller passed were in memory when the syscall ran.
"""

from __future__ import annotations

import errno
import os

import pytest

from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.kfd import KFD, KFDNoDevice, KFDNotSupported, LinuxPort
from pytest_amdgpu.kfd.abi import CREATE_QUEUE_V17, IOCTLS, lib


@pytest.fixture
def null_fd():
    fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    yield fd
    os.close(fd)


@pytest.fixture
def kfd(null_fd):
    return KFD.from_fd(LinuxPort(record=True), null_fd, version=(1, 17))


# (ioctl name, wrapper call, struct fields the kernel must have seen)
CALLS = [
    ("GET_VERSION", lambda k: k.get_version(), {}),
    ("ACQUIRE_VM", lambda k: k.acquire_vm(drm_fd=11, gpu_id=0x1234),
     {"drm_fd": 11, "gpu_id": 0x1234}),
    ("GET_PROCESS_APERTURES_NEW", lambda k: k.get_process_apertures(), {"num_of_nodes": 0}),
    ("ALLOC_MEMORY_OF_GPU",
     lambda k: k.alloc_memory(gpu_id=0x1234, size=0x20000, flags=int(
         lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM | lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE),
         va_addr=0x7F0000000000),
     {"gpu_id": 0x1234, "size": 0x20000, "flags": 0x80000001, "va_addr": 0x7F0000000000}),
    ("FREE_MEMORY_OF_GPU", lambda k: k.free_memory(handle=0x123400000005),
     {"handle": 0x123400000005}),
    ("MAP_MEMORY_TO_GPU", lambda k: k.map_memory(handle=0x123400000005, gpu_ids=[0x1234, 7]),
     {"handle": 0x123400000005, "n_devices": 2, "n_success": 0}),
    ("UNMAP_MEMORY_FROM_GPU",
     lambda k: k.unmap_memory(handle=0x123400000005, gpu_ids=[0x1234]),
     {"handle": 0x123400000005, "n_devices": 1}),
    ("AVAILABLE_MEMORY", lambda k: k.available_memory(gpu_id=0x1234), {"gpu_id": 0x1234}),
    ("CREATE_QUEUE",
     lambda k: k.create_queue(gpu_id=0x1234, queue_type=int(lib.KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID),
                              ring_base=0x10000, ring_size=0x4000, write_pointer=0x20000,
                              read_pointer=0x20008, sdma_engine_id=3),
     {"gpu_id": 0x1234, "queue_type": 4, "ring_base_address": 0x10000, "ring_size": 0x4000,
      "write_pointer_address": 0x20000, "read_pointer_address": 0x20008, "sdma_engine_id": 3,
      "queue_percentage": 100, "queue_priority": 7}),
    ("DESTROY_QUEUE", lambda k: k.destroy_queue(queue_id=9), {"queue_id": 9}),
    ("UPDATE_QUEUE",
     lambda k: k.update_queue(queue_id=9, ring_base=0x30000, ring_size=0x1000, percentage=50,
                              priority=3),
     {"queue_id": 9, "ring_base_address": 0x30000, "ring_size": 0x1000,
      "queue_percentage": 50, "queue_priority": 3}),
    ("SET_CU_MASK", lambda k: k.set_cu_mask(queue_id=9, mask=[0xFFFFFFFF, 0x3]),
     {"queue_id": 9, "num_cu_mask": 64}),
    ("GET_QUEUE_WAVE_STATE", lambda k: k.get_queue_wave_state(queue_id=9,
                                                              ctl_stack_address=0x40000),
     {"queue_id": 9, "ctl_stack_address": 0x40000}),
    ("ALLOC_QUEUE_GWS", lambda k: k.alloc_queue_gws(queue_id=9, num_gws=1),
     {"queue_id": 9, "num_gws": 1}),
    ("CREATE_EVENT", lambda k: k.create_event(event_type=int(lib.KFD_IOC_EVENT_MEMORY),
                                              auto_reset=False, node_id=2),
     {"event_type": 8, "auto_reset": 0, "node_id": 2}),
    ("DESTROY_EVENT", lambda k: k.destroy_event(event_id=5), {"event_id": 5}),
    ("SET_EVENT", lambda k: k.set_event(event_id=5), {"event_id": 5}),
    ("RESET_EVENT", lambda k: k.reset_event(event_id=5), {"event_id": 5}),
    ("WAIT_EVENTS", lambda k: k.wait_events(event_ids=[5, 6], timeout_ms=250,
                                            wait_for_all=True),
     {"num_events": 2, "wait_for_all": 1, "timeout": 250}),
    ("GET_CLOCK_COUNTERS", lambda k: k.get_clock_counters(gpu_id=0x1234), {"gpu_id": 0x1234}),
    ("SET_MEMORY_POLICY",
     lambda k: k.set_memory_policy(gpu_id=0x1234, default_policy=1, alternate_policy=0),
     {"gpu_id": 0x1234, "default_policy": 1, "alternate_policy": 0}),
    ("SET_SCRATCH_BACKING_VA",
     lambda k: k.set_scratch_backing_va(gpu_id=0x1234, va_addr=0x50000),
     {"gpu_id": 0x1234, "va_addr": 0x50000}),
    ("SET_TRAP_HANDLER",
     lambda k: k.set_trap_handler(gpu_id=0x1234, tba_addr=0x60000, tma_addr=0x61000),
     {"gpu_id": 0x1234, "tba_addr": 0x60000, "tma_addr": 0x61000}),
    ("SET_XNACK_MODE", lambda k: k.set_xnack_mode(enabled=None), {"xnack_enabled": -1}),
    ("SVM", lambda k: k.svm(op=int(lib.KFD_IOCTL_SVM_OP_SET_ATTR), start_addr=0x70000,
                            size=0x2000, attrs=[(int(lib.KFD_IOCTL_SVM_ATTR_ACCESS), 0x1234)]),
     {"op": 0, "start_addr": 0x70000, "size": 0x2000, "nattr": 1}),
    ("SMI_EVENTS", lambda k: k.smi_events(gpu_id=0x1234), {"gpuid": 0x1234}),
    ("RUNTIME_ENABLE", lambda k: k.runtime_enable(r_debug=0x80000), {"r_debug": 0x80000,
                                                                     "mode_mask": 1}),
]

COMPUTE_PATH = {
    "GET_VERSION", "ACQUIRE_VM", "GET_PROCESS_APERTURES_NEW", "ALLOC_MEMORY_OF_GPU",
    "FREE_MEMORY_OF_GPU", "MAP_MEMORY_TO_GPU", "UNMAP_MEMORY_FROM_GPU", "AVAILABLE_MEMORY",
    "CREATE_QUEUE", "DESTROY_QUEUE", "UPDATE_QUEUE", "SET_CU_MASK", "GET_QUEUE_WAVE_STATE",
    "ALLOC_QUEUE_GWS", "CREATE_EVENT", "DESTROY_EVENT", "SET_EVENT", "RESET_EVENT",
    "WAIT_EVENTS", "GET_CLOCK_COUNTERS", "SET_MEMORY_POLICY", "SET_SCRATCH_BACKING_VA",
    "SET_TRAP_HANDLER", "SET_XNACK_MODE", "SVM", "SMI_EVENTS", "RUNTIME_ENABLE",
}


def test_every_compute_path_ioctl_has_a_wrapper_call_here():
    assert {name for name, _, _ in CALLS} == COMPUTE_PATH


@pytest.mark.parametrize("name,call,fields", CALLS, ids=[c[0] for c in CALLS])
def test_wrapper_crosses_the_syscall_and_raises_enotty(kfd, name, call, fields):
    with pytest.raises(KFDNotSupported) as info:
        call(kfd)
    exc = info.value
    assert exc.errno == errno.ENOTTY
    assert exc.errno_name == "ENOTTY"
    assert exc.ioctl == name
    assert name in str(exc) and "ENOTTY" in str(exc)
    # the recording port saw exactly this request, with our values in the struct
    rec = kfd.port.trace[-1]
    assert rec.op == "ioctl" and rec.name == name and rec.errno == errno.ENOTTY
    assert rec.duration_us > 0
    for key, value in fields.items():
        assert rec.args[key] == value, key


def test_create_queue_on_1_17_sends_the_96_byte_request(kfd):
    seen = []
    real = kfd.port._ioctl

    def spy(fd, request, arg):
        seen.append(request)
        return real(fd, request, arg)

    kfd.port._ioctl = spy
    with pytest.raises(KFDNotSupported):
        kfd.create_queue(gpu_id=1, queue_type=0, ring_base=0x1000, ring_size=4096,
                         write_pointer=0x2000, read_pointer=0x2008)
    assert seen == [CREATE_QUEUE_V17.request]


def test_error_message_names_the_arguments(kfd):
    with pytest.raises(KFDNotSupported) as info:
        kfd.alloc_memory(gpu_id=0x4321, size=0x200000, flags=2, va_addr=0x7F0000000000)
    text = str(info.value)
    assert "ALLOC_MEMORY_OF_GPU" in text
    assert "gpu_id=17185" in text and "size=0x200000" in text
    assert "va_addr=0x7f0000000000" in text
    assert info.value.call_args["gpu_id"] == 0x4321


def test_map_failure_keeps_n_success(kfd):
    with pytest.raises(KFDNotSupported) as info:
        kfd.map_memory(handle=1, gpu_ids=[1, 2, 3], n_success=1)
    assert info.value.n_success == 1   # copied back by the driver's IOWR contract
    assert "n_success=1" in str(info.value)


def test_wait_failure_keeps_wait_result(kfd):
    with pytest.raises(KFDNotSupported) as info:
        kfd.wait_events(event_ids=[1], timeout_ms=0)
    assert info.value.wait_result == 0


def test_recording_formats_the_history(kfd):
    with pytest.raises(KFDNotSupported):
        kfd.destroy_queue(queue_id=42)
    text = kfd.port.format_trace()
    assert "DESTROY_QUEUE(queue_id=42" in text and "ENOTTY" in text


def test_unrecorded_port_uses_the_raw_syscall(null_fd):
    port = LinuxPort()
    k = KFD.from_fd(port, null_fd)
    with pytest.raises(KFDNotSupported):
        k.get_version()
    assert len(port.trace) == 0


def test_prepared_call_crosses_the_syscall(kfd):
    p = kfd.prepared("GET_CLOCK_COUNTERS", gpu_id=0x1234)
    with pytest.raises(KFDNotSupported) as info:
        p()
    assert info.value.ioctl == "GET_CLOCK_COUNTERS"
    assert info.value.call_args["gpu_id"] == 0x1234
    assert kfd.port.trace[-1].name == "GET_CLOCK_COUNTERS"
    errors = []
    q = kfd.prepared("GET_VERSION", on_error=errors.append)
    assert q() is None and q.call() is None
    assert errors == [errno.ENOTTY, errno.ENOTTY]
    assert q.request == IOCTLS["GET_VERSION"].request
    assert q.args.major_version == 0 and q.result().major == 0


def test_prepared_call_is_c_level(null_fd):
    import functools

    from pytest_amdgpu.kfd import _syscall

    k = KFD.from_fd(LinuxPort(), null_fd)
    p = k.prepared("GET_VERSION", on_error=[].append)
    assert isinstance(p, functools.partial) and isinstance(p.call, functools.partial)
    assert p.func is _syscall.ioctl_checked and p.call.func is _syscall.ioctl_checked


def test_prepared_rejects_unknown_fields_and_ioctls(kfd):
    with pytest.raises(UsageError, match="no field 'gpuid'"):
        kfd.prepared("GET_CLOCK_COUNTERS", gpuid=1)
    with pytest.raises(UsageError, match="unknown ioctl"):
        kfd.prepared("NOPE")


def test_values_that_do_not_fit_are_usage_errors(kfd):
    with pytest.raises(UsageError, match=r"gpu_id=-1 .*uint32_t"):
        kfd.acquire_vm(drm_fd=3, gpu_id=-1)
    with pytest.raises(UsageError, match="mask"):
        kfd.set_cu_mask(queue_id=1, mask=[1 << 32])
    with pytest.raises(UsageError, match="timeout_ms"):
        kfd.wait_events(event_ids=[1], timeout_ms=-5)
    assert len(kfd.port.trace) == 0   # nothing was sent


def test_mmap_error_is_typed(kfd):
    # /dev/null cannot be mapped: the kernel answers ENODEV
    with pytest.raises(KFDNoDevice) as info:
        kfd.mmap(offset=0, length=8192)
    assert info.value.ioctl == "mmap"
    assert "length=8192" in str(info.value)


def test_open_failure_is_typed(tmp_path):
    from pytest_amdgpu.kfd import KFDError

    with pytest.raises(KFDError) as info:
        KFD(LinuxPort(), str(tmp_path / "kfd"))
    assert info.value.errno == errno.ENOENT
    assert "does not exist" in str(info.value)


def test_open_then_get_version_enotty_closes_the_fd():
    port = LinuxPort(record=True)
    with pytest.raises(KFDNotSupported):
        KFD(port, "/dev/null")
    ops = [c.op for c in port.trace]
    assert ops == ["open", "ioctl", "close"]
