"""One negative test per validation rule: the exact errno, and nothing leaked.

Every case prepares what it needs, snapshots the driver (free VRAM per GPU, BO handles, queue
ids, event ids, VM mappings), makes the failing call, and checks the errno against
facts-kfd.md §2 (row cited per case) and that the snapshot is unchanged. Calls go through the
typed KFD wrappers or raw `port.ioctl` with cffi structs, never into the simulator.
"""

from __future__ import annotations

import errno as E
import os

import pytest

from pytest_amdgpu.kfd.abi import IOCTLS, address_of, ffi, lib

from .helpers import (
    DOORBELL,
    GTT,
    MMIO,
    PAGE,
    PUBLIC,
    Q_AQL,
    Q_ENG,
    Q_PM4,
    Q_SDMA,
    SHEET_SIZES,
    USERPTR,
    VRAM,
    WRITABLE,
    make_env,
)

ENOTSUPP = 524
BAD_USER = 1 << 47            # above TASK_SIZE_MAX: access_ok fails
CASES = {}


def case(errno: int, spec: str = "gfx942", **env_kw):
    def reg(fn):
        CASES[fn.__name__] = (fn, errno, spec, env_kw)
        return fn
    return reg


def _cq(env, **over):
    """Queue buffers for a PM4 queue, returning create_queue kwargs with overrides."""
    kind = over.pop("queue_type", Q_PM4)
    kw = dict(env.queue_buffers(kind)["kwargs"])
    kw.update(over)
    return lambda: env.kfd.create_queue(**kw)


# -- CREATE_QUEUE (§2.6) ---------------------------------------------------------------------

@case(E.EINVAL)
def cq_row1_percentage(env):
    return _cq(env, percentage=101)


@case(E.EINVAL)
def cq_row2_priority(env):
    return _cq(env, priority=16)


@case(E.EFAULT)
def cq_row3_ring_not_user(env):
    return _cq(env, ring_base=BAD_USER)


@case(E.EINVAL)
def cq_row4_ring_not_pow2(env):
    return _cq(env, ring_size=3000)


@case(E.EFAULT)
def cq_row6_rptr_not_user(env):
    return _cq(env, read_pointer=BAD_USER)


@case(E.EFAULT)
def cq_row7_eop_not_user(env):
    return _cq(env, eop_buffer_address=BAD_USER)


@case(E.EFAULT)
def cq_row7_ctx_not_user(env):
    return _cq(env, ctx_save_restore_address=BAD_USER)


@case(ENOTSUPP)
def cq_row8_queue_type(env):
    kw = dict(env.queue_buffers(Q_SDMA)["kwargs"], queue_type=5)
    return lambda: env.kfd.create_queue(**kw)


@case(E.EINVAL)
def cq_row9_gpu_id(env):
    return _cq(env, gpu_id=(env.gpu_id() + 1) & 0xFFFF)


@case(E.ESRCH, spec="gfx942x2")
def cq_row10_not_bound(env):
    return _cq(env, gpu_id=env.gpu_id(1))


@case(E.EINVAL)
def cq_row11_engine_id(env):      # 2 PCIe + 14 XGMI engines: ids 0..15
    kw = dict(env.queue_buffers(Q_SDMA)["kwargs"], queue_type=Q_ENG, sdma_engine_id=16)
    return lambda: env.kfd.create_queue(**kw)


@case(E.EINVAL)
def cq_row13_wptr_unmapped(env):
    b = env.alloc(PAGE, map=False)
    return _cq(env, write_pointer=b.va)


@case(E.EINVAL)
def cq_row13_rptr_bo_two_pages(env):
    b = env.alloc(2 * PAGE)
    return _cq(env, read_pointer=b.va)


@case(E.EINVAL)
def cq_row13_ring_size_mismatch(env):
    return _cq(env, ring_size=8192)            # the ring BO is 4 KiB


@case(E.EINVAL)
def cq_row13_ring_not_at_mapping_start(env):
    b = env.alloc(2 * PAGE)
    return _cq(env, ring_base=b.va + PAGE)


@case(E.EINVAL)
def cq_row14_eop_size(env):
    return _cq(env, eop_buffer_size=8192)


@case(E.EINVAL)
def cq_row14_eop_bo_size(env):
    b = env.alloc(2 * PAGE)
    return _cq(env, eop_buffer_address=b.va)


@case(E.EINVAL)
def cq_row14_ctl_stack_size(env):
    return _cq(env, ctl_stack_size=SHEET_SIZES["gfx942"]["ctl_stack"] + PAGE)


@case(E.EINVAL)
def cq_row14_ctx_save_size(env):
    return _cq(env, ctx_save_restore_size=SHEET_SIZES["gfx942"]["cwsr"] - PAGE)


@case(E.EINVAL)
def cq_row14_ctx_bo_too_small(env):
    b = env.alloc(SHEET_SIZES["gfx942"]["ctx_bo"] - PAGE, GTT | WRITABLE)
    return _cq(env, ctx_save_restore_address=b.va)


@case(E.EINVAL)
def cq_row14_compute_without_ctx_save(env):
    return _cq(env, queue_type=Q_AQL, ctx_save_restore_address=0)


@case(E.ENOSPC, spec="gfx1100")
def cq_row15_queues_per_device(env):
    kw = dict(env.queue_buffers(Q_AQL)["kwargs"])
    for _ in range(127):          # kfd max_queues (HWS limit) on gfx1100; buffers shared
        env.kfd.create_queue(**kw)
    return lambda: env.kfd.create_queue(**kw)


@case(E.ENOMEM, spec="gfx1100x9")
def cq_row16_queue_ids_per_process(env):
    for g in range(9):
        kw = dict(env.queue_buffers(Q_AQL, gpu=g)["kwargs"])
        for _ in range(127 if g < 8 else 1024 - 8 * 127):
            env.kfd.create_queue(**kw)
    kw = dict(env.queue_buffers(Q_AQL, gpu=8)["kwargs"])
    return lambda: env.kfd.create_queue(**kw)


@case(E.ENOMEM, spec="gfx1100")
def cq_row19_sdma_slots(env):
    kw = dict(env.queue_buffers(Q_SDMA)["kwargs"])
    for _ in range(2 * 6):       # 2 engines x 6 queues (TG)
        env.kfd.create_queue(**kw)
    return lambda: env.kfd.create_queue(**kw)


# -- DESTROY / UPDATE / CU mask / wave state / GWS (§2.7) --------------------------------------

@case(E.EINVAL)
def destroy_unknown(env):
    return lambda: env.kfd.destroy_queue(queue_id=5)


@case(E.EFAULT)
def update_unknown(env):
    return lambda: env.kfd.update_queue(queue_id=3, ring_base=0, ring_size=4096,
                                        percentage=100, priority=7)


@case(E.EINVAL)
def update_percentage(env):
    info, _ = env.create_queue(Q_SDMA)
    return lambda: env.kfd.update_queue(queue_id=info.queue_id, ring_base=0, ring_size=4096,
                                        percentage=101, priority=7)


@case(E.EFAULT)
def update_ring_not_mapped(env):
    info, _ = env.create_queue(Q_SDMA)
    b = env.alloc(PAGE, map=False)
    return lambda: env.kfd.update_queue(queue_id=info.queue_id, ring_base=b.va,
                                        ring_size=4096, percentage=100, priority=7)


@case(E.EINVAL)
def cu_mask_not_multiple_of_32(env):
    info, _ = env.create_queue(Q_SDMA)
    mask = ffi.new("uint32_t[1]", [1])
    return lambda: _raw_err(env, "SET_CU_MASK", queue_id=info.queue_id, num_cu_mask=31,
                            cu_mask_ptr=address_of(mask))


@case(E.EINVAL)
def cu_mask_zero(env):
    return lambda: _raw_err(env, "SET_CU_MASK", queue_id=0, num_cu_mask=0, cu_mask_ptr=0)


@case(E.EFAULT)
def cu_mask_unknown_queue(env):
    return lambda: env.kfd.set_cu_mask(queue_id=9, mask=[1])


@case(E.EFAULT)
def cu_mask_bad_pointer(env):
    info, _ = env.create_queue(Q_SDMA)
    return lambda: _raw_err(env, "SET_CU_MASK", queue_id=info.queue_id, num_cu_mask=32,
                            cu_mask_ptr=8)


@case(E.EINVAL, spec="gfx1100")
def cu_mask_pairs(env):
    info, _ = env.create_queue(Q_AQL)
    return lambda: env.kfd.set_cu_mask(queue_id=info.queue_id, mask=[0b0110])


@case(E.EINVAL)
def wave_state_active_queue(env):
    info, bufs = env.create_queue(Q_AQL)
    return lambda: env.kfd.get_queue_wave_state(queue_id=info.queue_id,
                                                ctl_stack_address=bufs["ptrs"].cpu)


@case(E.EFAULT)
def wave_state_unknown(env):
    return lambda: env.kfd.get_queue_wave_state(queue_id=4, ctl_stack_address=0)


@case(E.EINVAL)
def gws_unknown_queue(env):
    return lambda: env.kfd.alloc_queue_gws(queue_id=7, num_gws=1)


@case(E.EBUSY)
def gws_second_queue(env):
    a, _ = env.create_queue(Q_AQL)
    b, _ = env.create_queue(Q_AQL)
    env.kfd.alloc_queue_gws(queue_id=a.queue_id, num_gws=1)
    return lambda: env.kfd.alloc_queue_gws(queue_id=b.queue_id, num_gws=1)


# -- ALLOC (§2.3) -------------------------------------------------------------------------------

def _alloc(env, size=PAGE, flags=VRAM | WRITABLE, gpu=0, va=None, mmap_offset=0, gid=None):
    gid = env.gpu_id(gpu) if gid is None else gid
    va = env.reserve_va(max(size, PAGE)) if va is None else va
    return lambda: env.kfd.alloc_memory(gpu_id=gid, size=size, flags=flags, va_addr=va,
                                        mmap_offset=mmap_offset)


@case(E.EINVAL)
def alloc_row1_size0(env):
    env.acquire()
    return _alloc(env, size=0)


@case(E.EADDRINUSE)
def alloc_row2_svm_overlap(env):
    env.acquire()
    va = env.reserve_va(4 * PAGE)
    _svm(env, va, 2 * PAGE)
    return _alloc(env, va=va + PAGE)


@case(E.EADDRINUSE)
def alloc_row3_userptr_svm_overlap(env):
    env.acquire()
    host = _host(env, 2 * PAGE)
    _svm(env, host, 2 * PAGE)
    return _alloc(env, flags=USERPTR, va=env.reserve_va(PAGE), mmap_offset=host)


@case(E.EINVAL)
def alloc_row4_gpu_id(env):
    return _alloc(env, gid=(env.gpu_id() + 1) & 0xFFFF)


@case(E.EINVAL)
def alloc_row5_public_vram_small_bar(env):
    env.acquire()
    env.process.pdd_by_id(env.gpu_id()).device.large_bar = False   # a small-BAR board
    return _alloc(env, flags=VRAM | PUBLIC)


@case(E.ENODEV)
def alloc_row6_not_acquired(env):
    return _alloc(env)


@case(E.EINVAL)
def alloc_row7_doorbell_size(env):
    env.acquire()
    return _alloc(env, size=PAGE, flags=DOORBELL)


@case(E.EINVAL)
def alloc_row8_mmio_size(env):
    env.acquire()
    return _alloc(env, size=2 * PAGE, flags=MMIO)


@case(E.EINVAL)
def alloc_row9_no_domain(env):
    env.acquire()
    return _alloc(env, flags=WRITABLE)


@case(E.EINVAL)
def alloc_row9_userptr_without_address(env):
    env.acquire()
    return _alloc(env, flags=USERPTR, mmap_offset=0)


@case(E.ENOMEM, vram_size=64 << 20)
def alloc_row11_vram_exhausted(env):
    env.acquire()
    env.alloc(32 << 20)
    return _alloc(env, size=48 << 20)


# amdgpu_amdkfd_gpuvm_init_mem_limits: system limit = RAM - RAM/64 - 1.5 GiB (half of RAM - RAM/64
# below 3 GiB); TTM limit = RAM/2 (ttm_global_init). 64 MiB of RAM: 31.5 MiB; 8 GiB: TTM 4 GiB.
@case(E.ENOMEM, system_memory=64 << 20)
def alloc_row11_vram_gtt_is_charged_as_gtt(env):      # reserve_mem_limit tests GTT first
    env.acquire()
    return _alloc(env, size=32 << 20, flags=VRAM | GTT | WRITABLE)


@case(E.ENOMEM, system_memory=8 << 30)
def alloc_row11_gtt_over_the_ttm_limit(env):           # under the 6.4 GiB system limit
    env.acquire()
    return _alloc(env, size=(4 << 30) + PAGE, flags=GTT | WRITABLE)


# -- FREE (§2.4) ---------------------------------------------------------------------------------

@case(E.EBUSY)
def free_row4_still_mapped(env):
    b = env.alloc(PAGE)
    return lambda: env.kfd.free_memory(handle=b.handle)


@case(E.EINVAL)
def free_row3_double_free(env):
    b = env.alloc(PAGE)
    env.free(b)
    return lambda: env.kfd.free_memory(handle=b.handle)


@case(E.EINVAL)
def free_row2_unknown_gpu(env):
    return lambda: env.kfd.free_memory(handle=(0x1 << 32) | 5)


@case(E.EPERM)
def free_row1_event_page(env):
    page = env.alloc(PAGE, GTT | WRITABLE, map=False)
    env.kfd.create_event(event_type=0, event_page_handle=page.handle)
    return lambda: env.kfd.free_memory(handle=page.handle)


# -- MAP / UNMAP (§2.5) --------------------------------------------------------------------------

def _raw_err(env, name, **fields):
    spec = IOCTLS[name]
    s = ffi.new(spec.struct + " *")
    for k, v in fields.items():
        setattr(s, k, v)
    err = env.port.ioctl(env.kfd.fd, spec.request, address_of(s))
    if err:
        raise OSError(err, f"{name} failed")
    return s


@case(E.EINVAL)
def map_row1_no_devices(env):
    b = env.alloc(PAGE, map=False)
    return lambda: _raw_err(env, "MAP_MEMORY_TO_GPU", handle=b.handle, n_devices=0)


@case(E.EINVAL)
def map_row2_n_success(env):
    b = env.alloc(PAGE, map=False)
    ids = ffi.new("uint32_t[1]", [b.gpu_id])
    return lambda: _raw_err(env, "MAP_MEMORY_TO_GPU", handle=b.handle, n_devices=1,
                            n_success=2, device_ids_array_ptr=address_of(ids))


@case(E.EFAULT)
def map_row3_bad_array(env):
    b = env.alloc(PAGE, map=False)
    return lambda: _raw_err(env, "MAP_MEMORY_TO_GPU", handle=b.handle, n_devices=1,
                            device_ids_array_ptr=16)


@case(E.EINVAL)
def map_row4_handle_gpu(env):
    env.acquire()
    return lambda: env.kfd.map_memory(handle=(7 << 32) | 2, gpu_ids=[env.gpu_id()])


@case(E.ENOMEM)
def map_row6_unknown_handle(env):
    gid = env.acquire()
    return lambda: env.kfd.map_memory(handle=(gid << 32) | 77, gpu_ids=[gid])


@case(E.EINVAL)
def map_row7_peer_unknown(env):
    b = env.alloc(PAGE, map=False)
    return lambda: env.kfd.map_memory(handle=b.handle, gpu_ids=[(b.gpu_id + 1) & 0xFFFF])


@case(E.ENODEV, spec="gfx942x2")
def map_row7_peer_not_acquired(env):
    b = env.alloc(PAGE, map=False)
    return lambda: env.kfd.map_memory(handle=b.handle, gpu_ids=[env.gpu_id(1)])


@case(E.EINVAL)
def map_row8_va_unaligned(env):
    env.acquire()
    va = env.reserve_va(2 * PAGE) + 16
    a = env.kfd.alloc_memory(gpu_id=env.gpu_id(), size=PAGE, flags=VRAM, va_addr=va)
    return lambda: env.kfd.map_memory(handle=a.handle, gpu_ids=[env.gpu_id()])


@case(E.EINVAL)
def map_row8_overlap(env):
    b = env.alloc(2 * PAGE)
    a = env.kfd.alloc_memory(gpu_id=b.gpu_id, size=PAGE, flags=VRAM, va_addr=b.va + PAGE)
    return lambda: env.kfd.map_memory(handle=a.handle, gpu_ids=[b.gpu_id])


@case(E.EINVAL)
def map_row8_beyond_vm(env):
    env.acquire()
    a = env.kfd.alloc_memory(gpu_id=env.gpu_id(), size=PAGE, flags=VRAM, va_addr=1 << 48)
    return lambda: env.kfd.map_memory(handle=a.handle, gpu_ids=[env.gpu_id()])


@case(E.EINVAL)
def unmap_not_mapped(env):
    b = env.alloc(PAGE, map=False)
    return lambda: env.kfd.unmap_memory(handle=b.handle, gpu_ids=[b.gpu_id])


@case(E.ENOMEM)
def unmap_unknown_handle(env):
    gid = env.acquire()
    return lambda: env.kfd.unmap_memory(handle=(gid << 32) | 99, gpu_ids=[gid])


@case(E.EBUSY)
def unmap_in_use_by_a_queue(env):          # unmap_bo_from_gpuvm: queue_refcount (2024+)
    _info, bufs = env.create_queue(Q_SDMA)
    ring = bufs["ring"]
    return lambda: env.kfd.unmap_memory(handle=ring.handle, gpu_ids=[ring.gpu_id])


# -- events (§2.8, §2.9) ------------------------------------------------------------------------

@case(E.EINVAL)
def set_event_not_signal(env):
    m = env.kfd.create_event(event_type=8)
    return lambda: env.kfd.set_event(event_id=m.event_id)


@case(E.EINVAL)
def set_event_unknown(env):
    return lambda: env.kfd.set_event(event_id=3)


@case(E.EINVAL)
def reset_event_not_signal(env):
    m = env.kfd.create_event(event_type=3)
    return lambda: env.kfd.reset_event(event_id=m.event_id)


@case(E.EINVAL)
def destroy_event_unknown(env):
    return lambda: env.kfd.destroy_event(event_id=0)      # id 0 is reserved, never an event


@case(E.ENOSPC)
def create_event_slots_exhausted(env):
    for _ in range(255):          # 256 default slots, one reserved (E2, E3)
        env.kfd.create_event(event_type=0)
    return lambda: env.kfd.create_event(event_type=0)


@case(E.EINVAL)
def create_event_page_userptr(env):
    host = _host(env, PAGE)
    b = env.alloc(PAGE, USERPTR, va=host, mmap_offset=host, map=False)
    return lambda: env.kfd.create_event(event_type=0, event_page_handle=b.handle)


@case(E.EINVAL)
def create_event_page_unknown_handle(env):
    gid = env.acquire()
    return lambda: env.kfd.create_event(event_type=0, event_page_handle=(gid << 32) | 50)


@case(E.EINVAL)
def wait_unknown_event(env):
    return lambda: env.kfd.wait_events(event_ids=[42], timeout_ms=0)


@case(E.EFAULT)
def wait_bad_array(env):
    return lambda: _raw_err(env, "WAIT_EVENTS", events_ptr=24, num_events=1, timeout=0)


# -- others (§2.10) ------------------------------------------------------------------------------

@case(E.EBUSY)
def xnack_with_queues(env):
    env.create_queue(Q_SDMA)
    return lambda: _raw_err(env, "SET_XNACK_MODE", xnack_enabled=1)


@case(E.EPERM, spec="gfx1100")
def xnack_unsupported(env):
    return lambda: _raw_err(env, "SET_XNACK_MODE", xnack_enabled=1)


@case(E.EINVAL)
def svm_unaligned(env):
    return lambda: _svm(env, env.reserve_va(PAGE) + 8, PAGE)


@case(E.EINVAL)
def svm_zero_size(env):
    return lambda: _svm(env, env.reserve_va(PAGE), 0)


@case(E.EINVAL)
def svm_unknown_attribute(env):
    return lambda: _svm(env, _host(env, PAGE), PAGE, attrs=[(99, 0)])


@case(E.EINVAL)
def svm_unknown_gpu(env):
    return lambda: _svm(env, _host(env, PAGE), PAGE,
                        attrs=[(int(lib.KFD_IOCTL_SVM_ATTR_ACCESS), 0x1234)])


@case(E.EFAULT)
def svm_unmapped_range(env):
    va = env.reserve_va(PAGE)
    env.port.munmap(va, PAGE)
    return lambda: _svm(env, va, PAGE)


@case(E.EINVAL)
def available_memory_unknown_gpu(env):
    return lambda: env.kfd.available_memory(gpu_id=1)


@case(E.ESRCH)
def trap_handler_not_bound(env):
    return lambda: _raw_err(env, "SET_TRAP_HANDLER", gpu_id=env.gpu_id(), tba_addr=0)


@case(E.EINVAL)
def smi_unknown_gpu(env):
    return lambda: _raw_err(env, "SMI_EVENTS", gpuid=3)


@case(E.ENOTTY)
def ioctl_unknown_nr(env):
    req = (3 << 30) | (8 << 16) | (ord("K") << 8) | 0x40
    return lambda: _raw_request(env, req)


@case(E.ENOTTY)
def ioctl_not_simulated_dbg_trap(env):
    req = (3 << 30) | (8 << 16) | (ord("K") << 8) | 0x26
    return lambda: _raw_request(env, req)


@case(E.EPERM)
def ioctl_deprecated_dbg_register(env):
    req = (1 << 30) | (8 << 16) | (ord("K") << 8) | 0x0D
    return lambda: _raw_request(env, req)


@case(E.EFAULT)
def ioctl_deprecated_dbg_register_bad_pointer(env):     # copy-in happens before the handler
    req = (1 << 30) | (8 << 16) | (ord("K") << 8) | 0x0D
    return lambda: _raw_request(env, req, addr=64)


@case(E.EINVAL)
def mmap_bo_private(env):          # ttm_bo_mmap_obj: no copy-on-write mapping of a BO
    b = env.alloc(PAGE, GTT | WRITABLE)
    return lambda: env.port.mmap(0, PAGE, int(lib.PROT_READ | lib.PROT_WRITE),
                                 int(lib.MAP_PRIVATE), env.render[b.gpu_id], b.mmap_offset)


@case(E.EFAULT)
def ioctl_bad_argument_pointer(env):
    return lambda: _raw_request(env, IOCTLS["ALLOC_MEMORY_OF_GPU"].request, addr=64)


@case(E.EBADF)
def ioctl_closed_fd(env):
    fd = env.open_render()
    env.port.close(fd)
    return lambda: _raw_request(env, IOCTLS["GET_VERSION"].request, fd=fd)


def _raw_request(env, request, addr=None, fd=None):
    buf = ffi.new("char[256]")
    err = env.port.ioctl(env.kfd.fd if fd is None else fd, request,
                         address_of(buf) if addr is None else addr)
    if err:
        raise OSError(err, "ioctl failed")


def _host(env, size):
    return env.port.mmap(0, size, int(lib.PROT_READ | lib.PROT_WRITE),
                         int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS), -1, 0)


def _svm(env, start, size, attrs=()):
    """SVM SET_ATTR with the attribute array after the header; its size added to the
    request, as libhsakmt does."""
    attrs = list(attrs) or [(int(lib.KFD_IOCTL_SVM_ATTR_SET_FLAGS), 0)]
    hdr = ffi.sizeof("struct kfd_ioctl_svm_args")
    buf = ffi.new("char[]", hdr + 8 * len(attrs))
    a = ffi.cast("struct kfd_ioctl_svm_args *", buf)
    a.start_addr, a.size = start, size
    a.op = int(lib.KFD_IOCTL_SVM_OP_SET_ATTR)
    a.nattr = len(attrs)
    words = ffi.cast("uint32_t *", buf + hdr)
    for i, (t, v) in enumerate(attrs):
        words[2 * i], words[2 * i + 1] = t, v
    req = IOCTLS["SVM"].request + ((8 * len(attrs)) << 16)
    err = env.port.ioctl(env.kfd.fd, req, address_of(buf))
    if err:
        raise OSError(err, "SVM failed")


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule(name):
    fn, expected, spec, env_kw = CASES[name]
    env = make_env(spec, **env_kw)
    try:
        call = fn(env)
        before = env.snapshot()
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == expected, \
            f"{name}: got {E.errorcode.get(ei.value.errno, ei.value.errno)}, expected " \
            f"{E.errorcode.get(expected, expected)}: {ei.value}"
        assert env.snapshot() == before, f"{name} leaked or changed driver state"
        env.process.check_invariants()
    finally:
        env.port.close_port()


def test_map_partial_success_reports_n_success_and_resumes():
    """MAP copies n_success back on failure (2.0, 2.5 row 7) and resumes from it."""
    env = make_env("gfx942x2")
    try:
        env.acquire(0)
        b = env.alloc(PAGE, map=False)
        g0, g1 = env.gpu_id(0), env.gpu_id(1)
        with pytest.raises(OSError) as ei:          # gpu 1 not acquired yet
            env.kfd.map_memory(handle=b.handle, gpu_ids=[g0, g1])
        assert ei.value.errno == E.ENODEV and ei.value.n_success == 1
        env.acquire(1)
        assert env.kfd.map_memory(handle=b.handle, gpu_ids=[g0, g1], n_success=1) == 2
        assert env.kfd.map_memory(handle=b.handle, gpu_ids=[g0]) == 1   # twice: success
        bo = env.process.live_bos()[0]
        assert sorted(bo.mappings) == sorted([g0, g1])
    finally:
        env.port.close_port()


def test_create_queue_struct_copied_back_on_failure():
    """IOWR: the clamped ring_size is in the caller's struct even though the call failed."""
    env = make_env()
    try:
        env.acquire()
        s = ffi.new("struct amdgpu_kfd_create_queue_args_v17 *")
        s.gpu_id, s.queue_type, s.ring_size = env.gpu_id(), Q_SDMA, 512
        s.queue_percentage, s.queue_priority = 100, 7
        err = env.port.ioctl(env.kfd.fd, int(lib.AMDGPU_KFD_IOC_CREATE_QUEUE_V17),
                             address_of(s))
        assert err == E.EINVAL and s.ring_size == 1024      # row 13 failed after row 5
    finally:
        env.port.close_port()


def test_destroy_of_a_hung_queue_returns_etime_and_frees_it():
    env = make_env()
    try:
        info, _ = env.create_queue(Q_AQL)
        engine = env.process.pdds[0].device.engine
        engine.hung.add(info.queue_id)
        with pytest.raises(OSError) as ei:
            env.kfd.destroy_queue(queue_id=info.queue_id)
        assert ei.value.errno == E.ETIME
        assert env.process.live_queues() == []
        env.process.check_invariants()
    finally:
        env.port.close_port()


def test_signal_events_grow_with_the_mmapped_page():
    env = make_env()
    try:
        for _ in range(255):
            env.kfd.create_event(event_type=0)
        env.kfd.mmap(offset=0x2 << 62, length=32768)       # M6: mapped size grows to 4096
        assert env.kfd.create_event(event_type=0).event_id == 256
    finally:
        env.port.close_port()


def test_unimplemented_ioctl_logs_one_line(caplog):
    env = make_env()
    try:
        with caplog.at_level("WARNING", logger="pytest_amdgpu.sim"):
            req = (3 << 30) | (8 << 16) | (ord("K") << 8) | 0x1C    # GET_DMABUF_INFO
            assert env.port.ioctl(env.kfd.fd, req, address_of(ffi.new("char[8]"))) == E.ENOTTY
        assert sum("not implemented" in r.message for r in caplog.records) == 1
    finally:
        env.port.close_port()


def test_internal_error_becomes_eio(monkeypatch, caplog):
    from pytest_amdgpu.sim import port as simport

    env = make_env()
    try:
        spec, ctype, _h = simport._TABLE[IOCTLS["GET_VERSION"].nr]

        def boom(*a):
            raise RuntimeError("simulated driver bug")

        monkeypatch.setitem(simport._TABLE, spec.nr, (spec, ctype, boom))
        with caplog.at_level("ERROR", logger="pytest_amdgpu.sim"):
            err, _ = env.raw("GET_VERSION")
        assert err == E.EIO
        assert any("simulated driver bug" in (r.exc_text or "") or r.exc_info
                   for r in caplog.records)
    finally:
        env.port.close_port()


def test_internal_errors_of_mmap_and_doorbell_are_eio(monkeypatch, caplog):
    """mmap and the doorbell store raise OSError as their LinuxPort counterparts do; a bug of
    the simulator behind them is EIO with the traceback logged, not an arbitrary exception."""
    from pytest_amdgpu.sim import port as simport
    from pytest_amdgpu.sim import process as simprocess

    env = make_env()
    try:
        info, _ = env.create_queue(Q_AQL)
        base = env.kfd.mmap(offset=info.doorbell_offset & ~0x1FFF, length=8192)

        def boom(*a, **kw):
            raise RuntimeError("simulated driver bug")

        monkeypatch.setattr(simport.SimPort, "_kfd_mmap", boom)
        monkeypatch.setattr(simprocess.ProcessDevice, "doorbell_written", boom)
        with caplog.at_level("ERROR", logger="pytest_amdgpu.sim"):
            with pytest.raises(OSError) as ei:
                env.kfd.mmap(offset=info.doorbell_offset & ~0x1FFF, length=8192)
            assert ei.value.errno == E.EIO
            with pytest.raises(OSError) as ei:
                env.port.doorbell(base + (info.doorbell_offset & 0x1FFF), 1)
            assert ei.value.errno == E.EIO
        assert sum("simulated driver bug" in (r.exc_text or "") or bool(r.exc_info)
                   for r in caplog.records) == 2
    finally:
        env.port.close_port()


def test_smaller_and_larger_request_sizes():
    """usize from the request: the 88-byte CREATE_QUEUE (sdma_engine_id zero-filled) and a
    request larger than the kernel struct (only usize bytes copied)."""
    env = make_env()
    try:
        bufs = env.queue_buffers(Q_SDMA)
        kw = bufs["kwargs"]
        s = ffi.new("struct kfd_ioctl_create_queue_args *")
        s.gpu_id, s.queue_type, s.ring_size = kw["gpu_id"], Q_ENG, 4096
        s.ring_base_address, s.write_pointer_address = kw["ring_base"], kw["write_pointer"]
        s.read_pointer_address = kw["read_pointer"]
        s.queue_percentage, s.queue_priority = 100, 7
        assert env.port.ioctl(env.kfd.fd, IOCTLS["CREATE_QUEUE"].request, address_of(s)) == 0
        assert env.process.live_queues()[0].sdma_engine == 0       # tail zero-filled
        big = ffi.new("char[64]", b"\xAA" * 64)
        req = (IOCTLS["GET_VERSION"].request & ~(0x3FFF << 16)) | (64 << 16)
        assert env.port.ioctl(env.kfd.fd, req, address_of(big)) == 0
        assert bytes(ffi.buffer(big, 8)) == (1).to_bytes(4, "little") + (17).to_bytes(4, "little")
        assert bytes(ffi.buffer(big, 64))[8:] == bytes(56)          # IOR: zeroed, copied out
    finally:
        env.port.close_port()


def test_iow_struct_is_not_copied_back():
    env = make_env()
    try:
        s = ffi.new("struct kfd_ioctl_set_event_args *")
        s.event_id, s.pad = 77, 0x5A
        assert env.port.ioctl(env.kfd.fd, IOCTLS["SET_EVENT"].request, address_of(s)) \
            == E.EINVAL
        assert (s.event_id, s.pad) == (77, 0x5A)
    finally:
        env.port.close_port()


def test_private_prot_none_mapping_of_a_bo_is_allowed():
    """amdgpu_gem_object_mmap lets a PROT_NONE MAP_PRIVATE mapping through (the Thunk's
    debugger mappings); any other private mapping of a BO is EINVAL (mmap_bo_private)."""
    env = make_env()
    try:
        b = env.alloc(PAGE, GTT | WRITABLE)
        addr = env.port.mmap(0, PAGE, int(lib.PROT_NONE), int(lib.MAP_PRIVATE),
                             env.render[b.gpu_id], b.mmap_offset)
        env.port.munmap(addr, PAGE)
    finally:
        env.port.close_port()


def test_wave_state_copies_nothing_to_the_control_stack_pointer():
    """GFX8-11 MQD managers report the used sizes and copy nothing to ctl_stack_address (the
    control stack lives in the context-save area): the caller's buffer stays as it was, and
    even an unmapped pointer is accepted."""
    env = make_env()
    try:
        info, _ = env.create_queue(Q_AQL)
        env.kfd.update_queue(queue_id=info.queue_id, ring_base=0, ring_size=4096,
                             percentage=100, priority=7)             # inactive queue
        buf = ffi.new("char[64]", b"\x5a" * 64)
        for ptr in (address_of(buf), 16):
            err, s = env.raw("GET_QUEUE_WAVE_STATE", queue_id=info.queue_id,
                             ctl_stack_address=ptr)
            assert (err, s.ctl_stack_used_size, s.save_area_used_size) == (0, 0, 0)
        assert bytes(ffi.buffer(buf)) == b"\x5a" * 64
    finally:
        env.port.close_port()


def test_mmap_errors():
    env = make_env()
    try:
        gid = env.acquire()
        with pytest.raises(OSError) as ei:            # no signal page yet (M6)
            env.kfd.mmap(offset=0x2 << 62, length=PAGE)
        assert ei.value.errno == E.EINVAL
        env.kfd.create_event(event_type=0)
        with pytest.raises(OSError) as ei:            # larger than 32 KiB
            env.kfd.mmap(offset=0x2 << 62, length=65536)
        assert ei.value.errno == E.EINVAL
        with pytest.raises(OSError) as ei:            # MMIO without a gpu id (M2)
            env.kfd.mmap(offset=0, length=PAGE)
        assert ei.value.errno == E.ENODEV
        with pytest.raises(OSError) as ei:            # unknown DRM offset on the render node
            env.port.mmap(0, PAGE, int(lib.PROT_READ), int(lib.MAP_SHARED), env.render[gid],
                          0x7000_0000_0000)
        assert ei.value.errno == E.EINVAL
        assert os.path.exists("/dev/null")
    finally:
        env.port.close_port()
