"""What the runtime must get right on a real /dev/kfd, checked through the simulated driver's
record of the ioctls and the memory the GPU reads: the RUNTIME_ENABLE version gate, the device's
XNACK / SRAM ECC modes and the code objects they admit, small-BAR VRAM, the CREATE_QUEUE sizes
of facts-kfd.md §5, and scratch on a node of several XCCs.

Expected values come from the KFD header (via the C compiler, `abi.lib`), kfd_sysfs.h, the
worked values of facts-kfd.md §5, the e_flags encoding of AMDGPUUsage and ROCR's scratch
set-up (amd_aql_queue.cpp InitScratchSRD / FillComputeTmpRingSize, facts-pm4.md §7) — not from
the runtime under test.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.errors import CodeObjectError
from pytest_amdgpu.kfd import KFDInvalidArgument
from pytest_amdgpu.packets import aql, pm4
from pytest_amdgpu.runtime import open_device
from pytest_amdgpu.sim.machine import SimMachine

HSA_CAP_SRAM_EDCSUPPORTED = 0x04000000        # kfd_sysfs.h
HEAP_TYPE = {"FB_PUBLIC": 1, "FB_PRIVATE": 2}  # kfd_topology.h HSA_MEM_HEAP_TYPE_*
# e_flags (AMDGPUUsage, code object v4+): MACH gfx90a 0x3F; XNACK [9:8] 2 off / 3 on;
# SRAMECC [11:10] 2 off / 3 on
MACH_GFX90A = 0x03F
XNACK_OFF, XNACK_ON = 0x200, 0x300
SRAMECC_OFF, SRAMECC_ON = 0x800, 0xC00
E_FLAGS_OFFSET = 48                            # Elf64_Ehdr.e_flags


def ioctl_names(device) -> list[str]:
    return [c.name for c in device.port.trace if c.op == "ioctl"]


def _sim(spec: str, **kw) -> SimMachine:
    return SimMachine(spec, **kw)


# -- RUNTIME_ENABLE ------------------------------------------------------------------------------

@pytest.mark.parametrize(("minor", "sent"), [(12, False), (13, True), (17, True)])
def test_runtime_enable_from_kfd_1_13(minor, sent):
    """RUNTIME_ENABLE (0x25) came with the debugger API, KFD ioctl 1.13 (kfd_ioctl.h version
    history "1.13 - Add debugger API"): the runtime sends it from 1.13 on and never before."""
    with open_device(sim=_sim("gfx942", kfd_version=(1, minor))) as dev:
        assert ("RUNTIME_ENABLE" in ioctl_names(dev)) is sent
        sig = dev.create_signal(0)
        q = dev.create_queue("pm4")
        q.signal(sig, 5)
        assert sig.wait(5, timeout=10) == 5


# -- XNACK / SRAM ECC modes ------------------------------------------------------------------------

def _copy_with_flags(flags: int) -> bytes:
    data = bytearray(kernels.path("copy", "gfx90a").read_bytes())
    struct.pack_into("<I", data, E_FLAGS_OFFSET, flags)
    return bytes(data)


def test_device_modes_come_from_the_driver():
    """SRAM ECC: the node's capability bit HSA_CAP_SRAM_EDCSUPPORTED (ROCR runs "sramecc+"
    when it is set); XNACK: the process mode SET_XNACK_MODE reports (a query is -1)."""
    with open_device("sim", target="gfx90a") as dev:
        queries = [c for c in dev.port.trace if c.op == "ioctl" and c.name == "SET_XNACK_MODE"]
        assert queries and queries[0].args["xnack_enabled"] == -1
        ecc = bool(dev.node.properties["capability"] & HSA_CAP_SRAM_EDCSUPPORTED)
        assert dev.sramecc == ("on" if ecc else "off")
        assert dev.xnack == ("on" if dev.kfd.set_xnack_mode(enabled=None) else "off")
    with open_device("sim", target="gfx1100") as dev:
        assert (dev.xnack, dev.sramecc) == (None, None)       # gfx1100 has neither mode


@pytest.mark.parametrize(("feature", "flags_on", "flags_off"), [
    ("sramecc", SRAMECC_ON, SRAMECC_OFF), ("xnack", XNACK_ON, XNACK_OFF)])
def test_load_kernel_refuses_the_other_mode(feature, flags_on, flags_off):
    """A code object built for one xnack / sramecc mode loads only on a device running that
    mode (ROCR refuses the others); the message names both modes and the fix."""
    with open_device("sim", target="gfx90a") as dev:
        mode = getattr(dev, feature)
        assert mode in ("on", "off")
        good, bad = (flags_on, flags_off) if mode == "on" else (flags_off, flags_on)
        kernel = dev.load_kernel(_copy_with_flags(MACH_GFX90A | good), "copy")
        kernel.free()
        with pytest.raises(CodeObjectError) as info:
            dev.load_kernel(_copy_with_flags(MACH_GFX90A | bad), "copy")
        sign = "+" if mode == "on" else "-"
        other = "-" if mode == "on" else "+"
        assert f"{feature}{other}" in str(info.value) and f"{feature}{sign}" in str(info.value)
        # the caller may state the mode itself
        dev.load_kernel(_copy_with_flags(MACH_GFX90A | bad), "copy",
                        **{feature: "off" if mode == "on" else "on"}).free()
        assert dev.live_objects() == []


# -- small BAR -----------------------------------------------------------------------------------

def _small_bar_machine() -> SimMachine:
    """A gfx1100 board whose VRAM is not all CPU-visible: the driver refuses VRAM|PUBLIC and its
    topology lists the frame buffer as FB_PRIVATE (kfd_crat.c)."""
    machine = _sim("gfx1100")
    dev = machine.devices[0]
    dev.large_bar = False
    for path, text in machine.sysfs_files.items():
        if path.endswith("mem_banks/0/properties") and f"/nodes/{dev.node_index}/" in path:
            machine.sysfs_files[path] = text.replace(
                f"heap_type {HEAP_TYPE['FB_PUBLIC']}\n", f"heap_type {HEAP_TYPE['FB_PRIVATE']}\n")
    return machine


def test_small_bar_vram():
    """On a small-BAR board VRAM is allocated without a CPU mapping, the runtime's own
    CPU-written buffers (code images) go to system memory, kernels still run, and asking for
    CPU-visible VRAM fails with EINVAL and a hint naming the BAR."""
    with open_device(sim=_small_bar_machine()) as dev:
        assert not dev.large_bar
        with pytest.raises(KFDInvalidArgument) as info:
            dev.alloc(4096, "vram")
        assert "BAR" in str(info.value) and "cpu_access=False" in str(info.value)
        hidden = dev.alloc(4096, "vram", cpu_access=False)
        out = dev.alloc(4096, "gtt")
        kernel = dev.load_kernel("write_value")
        q = dev.create_queue("aql")
        q.dispatch(kernel, 1, 1, [out, 0x5B]).wait(10)
        assert int(out.view(np.uint32)[0]) == 0x5B
        sdma = dev.create_queue("sdma")
        sdma.copy(hidden, out, 4096)
        sdma.copy(out.gpu_address + 8, hidden.gpu_address, 4)
        done = dev.create_signal(0)
        sdma.signal(done, 1)
        done.wait(1, timeout=10)
        assert int(out.view(np.uint32)[2]) == 0x5B
    with open_device("sim", target="gfx1100") as dev:
        assert dev.large_bar                          # the FB_PUBLIC default boards


# -- read pointers ---------------------------------------------------------------------------------

def test_pm4_read_pointer_wrapping_at_the_ring_size():
    """The CP writes a PM4 queue's read pointer back as 32-bit dwords wrapping at the ring size
    even where the write pointer is 64-bit (kfdtest PM4Queue::Rptr / RptrWhenConsumed): the
    runtime's consumed count and free space read such a value as well as a 64-bit count."""
    with open_device("sim", target="gfx942") as dev:
        q = dev.create_queue("pm4", ring_size=1024)
        buf = dev.alloc(4096, "gtt")
        ring_dw = 1024 // 4
        for i in range(3 * ring_dw // 5):              # past the ring's end twice
            q.write_data(buf.gpu_address, [i])
        q.wait_idle(timeout=10)
        wptr = q.write_pointer
        assert wptr > 2 * ring_dw
        q.pointers.view(np.uint64)[0] = wptr % ring_dw  # the CP's 32-bit form
        assert (q.read_pointer, q.pending) == (wptr, 0)
        q.pointers.view(np.uint64)[0] = (wptr - 7) % ring_dw
        assert (q.read_pointer, q.pending) == (wptr - 7, 7)
        q.pointers.view(np.uint64)[0] = wptr
        q.write_data(buf.gpu_address, [1])              # the queue still runs afterwards
        q.wait_idle(timeout=10)


# -- CREATE_QUEUE sizes ----------------------------------------------------------------------------

# facts-kfd.md §5 worked values for the §6.3 nodes: (ctl_stack_size, cwsr_size, ctx-save BO)
QUEUE_SIZES = {"gfx90a": (0x9000, 0x400F000, 0x402F000),
               "gfx942": (0x3000, 0x1621000, 0xB167000),
               "gfx1100": (0xA000, 0x2BEA000, 0x2C02000)}


@pytest.mark.parametrize("target", sorted(QUEUE_SIZES))
@pytest.mark.parametrize("kind", ["pm4", "aql"])
def test_compute_queue_buffers_have_the_driver_sizes(target, kind):
    """CREATE_QUEUE of a compute queue carries the EOP size (4096), control-stack size and
    save-area size KFD computes for the node, and the save area is a buffer of exactly
    ALIGN((cwsr + debug) * num_xcc, PAGE) (facts-kfd.md §2.6 row 14, §5)."""
    ctl, cwsr, bo = QUEUE_SIZES[target]
    with open_device("sim", target=target) as dev:
        q = dev.create_queue(kind)
        call = [c for c in dev.port.trace if c.op == "ioctl" and c.name == "CREATE_QUEUE"][-1]
        assert call.errno == 0
        assert (call.args["eop_buffer_size"], call.args["ctl_stack_size"],
                call.args["ctx_save_restore_size"]) == (4096, ctl, cwsr)
        assert call.args["ctx_save_restore_address"] == q.ctx_save.gpu_address
        assert q.ctx_save.alloc_size == bo and q.eop.alloc_size == 4096
        q.destroy()


# -- scratch on several XCCs ------------------------------------------------------------------------

GFX942_XCC = 8            # facts-kfd.md §6.3: MI300X SPX, num_xcc 8


def _amd_queue(q) -> dict:
    raw = q.amd_queue.read(0, aql.AMD_QUEUE.sizeof)
    q_ = aql.AMD_QUEUE
    u32 = lambda off: struct.unpack_from("<I", raw, off)[0]  # noqa: E731
    u64 = lambda off: struct.unpack_from("<Q", raw, off)[0]  # noqa: E731
    return {"rsrc": [u32(q_.scratch_resource_descriptor + 4 * i) for i in range(4)],
            "base": u64(q_.scratch_backing_memory_location),
            "bytes": u64(q_.scratch_backing_memory_byte_size),
            "tmpring": u32(q_.compute_tmpring_size)}


def test_aql_scratch_is_per_xcc_on_gfx942():
    """ROCR on a multi-XCC node: the scratch buffer descriptor's NUM_RECORDS and
    scratch_backing_memory_byte_size give one XCC's share, COMPUTE_TMPRING_SIZE.WAVES the waves
    of that share (WAVESIZE in 1 KiB units on gfx9), and the backing holds num_xcc shares."""
    with open_device("sim", target="gfx942") as dev:
        assert dev.node.num_xcc == GFX942_XCC
        q = dev.create_queue("aql")
        n = 300
        idx, out = dev.alloc(4 * n, "gtt"), dev.alloc(4 * n, "gtt")
        sel = (np.arange(n, dtype=np.uint32) * 37) % 97
        idx.view(np.uint32)[:] = sel
        kernel = dev.load_kernel("scratch")
        q.dispatch(kernel, n, 64, [idx, out, n]).wait(10)
        want = (np.arange(n, dtype=np.uint64) * ((sel & 63) + 1)).astype(np.uint32)
        assert np.array_equal(out.view(np.uint32), want)
        f = _amd_queue(q)
        waves, wavesize = f["tmpring"] & 0xFFF, (f["tmpring"] >> 12) & 0x1FFF
        per_xcc = waves * wavesize * 1024
        assert waves > 0 and wavesize > 0
        assert f["rsrc"][2] == per_xcc == f["bytes"]
        assert f["rsrc"][0] | (f["rsrc"][1] & 0xFFFF) << 32 == f["base"]
        backing = [b for b in q._buffers if b.gpu_address == f["base"]]
        assert backing and backing[0].alloc_size >= GFX942_XCC * per_xcc
        # enough for a lane's private segment in every wave slot of a share
        lane_bytes = kernel.private_segment_size
        assert wavesize * 1024 >= 64 * lane_bytes


def test_pm4_scratch_base_per_xcc_on_gfx942():
    """A PM4 dispatch on gfx942 (architected flat scratch, 8 XCCs) gives every XCC its own
    COMPUTE_DISPATCH_SCRATCH_BASE: PRED_EXEC selecting XCC i (VIRTUAL_XCC_ID_SELECT bit i) over
    the SET_SH_REG of base + i * share (tinygrad's MI300X sequence, facts-pm4.md §7)."""
    with open_device("sim", target="gfx942") as dev:
        q = dev.create_queue("pm4")
        n = 128
        idx, out = dev.alloc(4 * n, "gtt"), dev.alloc(4 * n, "gtt")
        idx.view(np.uint32)[:] = np.arange(n, dtype=np.uint32)
        kernel = dev.load_kernel("scratch")
        start = q.write_pointer
        q.dispatch(kernel, n, 64, [idx, out, n]).wait(10)
        want = (np.arange(n, dtype=np.uint64) * ((np.arange(n) & 63) + 1)).astype(np.uint32)
        assert np.array_equal(out.view(np.uint32), want)
        words = q.ring.view(np.uint32)[start:q.write_pointer]
        packets = [p for _, p, _ in pm4.iter_packets(words, dev.target)]
        tmpring = [p for p in packets if isinstance(p, pm4.SetShReg)
                   and p.reg_offset == 0x218]                        # COMPUTE_TMPRING_SIZE
        waves, wavesize = tmpring[0].values[0] & 0xFFF, (tmpring[0].values[0] >> 12) & 0x1FFF
        share = waves * wavesize * 1024
        bases = []
        for i, p in enumerate(packets):
            if isinstance(p, pm4.SetShReg) and p.reg_offset == 0x210:  # DISPATCH_SCRATCH_BASE
                pred = packets[i - 1]
                assert isinstance(pred, pm4.PredExec)
                assert pred.exec_count == len(p.encode(dev.target))
                lo, hi = p.values
                bases.append((pred.virtual_xcc_id_select, (hi & 0xFF) << 40 | lo << 8))
        assert [mask for mask, _ in bases] == [1 << i for i in range(GFX942_XCC)]
        assert [b - bases[0][1] for _, b in bases] == [i * share for i in range(GFX942_XCC)]
