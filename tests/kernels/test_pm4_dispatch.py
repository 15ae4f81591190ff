"""The PM4 dispatch sequence a Kernel builds, read back with the published packet format and
register offsets (facts-pm4.md §1.1, §3.7, §3.8, §4.1, golden packets G8-G10), never with our
own decoder: SET_SH_REG of COMPUTE_PGM_LO/HI, RSRC1/2/3, USER_DATA in ABI order, NUM_THREAD,
DISPATCH_DIRECT with the target's initiator."""

from __future__ import annotations

import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.runtime.kernel import Kernel, scratch_config
from pytest_amdgpu.targets import get_target

# SH register offsets (absolute dword address - 0x2C00), facts-pm4.md §4.1
PGM_LO, PGM_HI, RSRC1, RSRC2 = 0x20C, 0x20D, 0x212, 0x213
RSRC3 = {"gfx90a": 0x22D, "gfx942": 0x22D, "gfx1100": 0x228}
TMPRING, SCRATCH_LO, SCRATCH_HI, LIMITS = 0x218, 0x210, 0x211, 0x215
START_X, NUM_THREAD_X, USER_DATA_0, RESTART_X = 0x204, 0x207, 0x240, 0x21B
SET_SH_REG, DISPATCH_DIRECT, ACQUIRE_MEM, EVENT_WRITE = 0x76, 0x15, 0x58, 0x46


def parse(dwords: list[int]) -> tuple[list[tuple[int, list[int]]], dict[int, int]]:
    """(packets as (opcode, body), SH register writes) using the type-3 header format:
    [31:30] type 3, [29:16] count = body dwords - 1, [15:8] opcode."""
    packets, regs, i = [], {}, 0
    while i < len(dwords):
        h = dwords[i]
        assert h >> 30 == 3, f"dword {i}: {h:#x} is not a type-3 header"
        count, opcode = (h >> 16) & 0x3FFF, (h >> 8) & 0xFF
        body = dwords[i + 1:i + 2 + count]
        assert len(body) == count + 1
        packets.append((opcode, body))
        if opcode == SET_SH_REG:
            for k, v in enumerate(body[1:]):
                regs[(body[0] & 0xFFFF) + k] = v
        i += count + 2
    return packets, regs


def unbound(name: str, target: str, code_address: int | None = None) -> Kernel:
    co = kernels.load(name, target)
    info = co.kernels[name]
    base = 0x7F00_0000_0000 if code_address is None else code_address - info.entry_offset
    return Kernel.unbound(info, get_target(target), base)


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_g8_pgm_address(target):
    kernel = unbound("copy", target, code_address=0x7F_1234_5678_00)
    dw = kernel.pm4_dwords(64, 64, 0x1000, acquire=False)
    at = dw.index(0xC0027600)
    assert dw[at:at + 4] == [0xC0027600, 0x0000020C, 0x12345678, 0x0000007F]      # G8


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_g9_rsrc3_offset(target):
    kernel = unbound("copy", target)
    dw = kernel.pm4_dwords(64, 64, 0x1000, acquire=False)
    at = [i for i in range(len(dw) - 1) if dw[i] == 0xC0017600 and dw[i + 1] == RSRC3[target]]
    assert len(at) == 1                                                            # G9
    assert dw[at[0] + 2] == kernel.descriptor.compute_pgm_rsrc3


@pytest.mark.parametrize(("target", "initiator"), [
    ("gfx90a", 0x5), ("gfx942", 0x5), ("gfx1100", 0x8005)])
def test_g10_dispatch_direct(target, initiator):
    kernel = unbound("copy", target)
    assert kernel.wave32 == (target == "gfx1100")
    dw = kernel.pm4_dwords((4 * 64, 2 * 2), (64, 2), 0x1000)
    at = dw.index(0xC0031500)
    assert dw[at:at + 5] == [0xC0031500, 4, 2, 1, initiator]                       # G10


@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize("name", ["copy", "fill_id", "scratch", "dispatch_packet", "empty",
                                  "lds_barrier", "mixed_args"])
def test_register_sequence(target, name):
    kernel = unbound(name, target)
    kd = kernel.descriptor
    t = get_target(target)
    scratch = scratch_config(t, lane_bytes=kernel.private_segment_size,
                             wave_lanes=kd.wavefront_size, waves=8, base=0x7E00_0000_0000)
    use_scratch = kernel.info.needs_scratch
    lds = kernel.group_segment_size + 1000
    packets, regs = parse(kernel.pm4_dwords(
        (130, 3), (64, 2), 0x7F00_0001_0000, dispatch_ptr=0x7F00_0002_0000,
        queue_ptr=0x7F00_0003_0000, dispatch_id=0x1_0000_0005,
        scratch=scratch if use_scratch else None, group_segment_size=lds))
    opcodes = [op for op, _ in packets]
    assert opcodes[0] == ACQUIRE_MEM and opcodes[-2:] == [DISPATCH_DIRECT, EVENT_WRITE]
    assert packets[-1][1] == [0x407]              # CS_PARTIAL_FLUSH, index 4 (G11)
    code = kernel.code_address
    assert (regs[PGM_LO], regs[PGM_HI]) == ((code >> 8) & 0xFFFFFFFF, code >> 40)
    assert regs[RSRC1] == kd.compute_pgm_rsrc1
    assert regs[RSRC2] & ~(0x1FF << 15) == kd.compute_pgm_rsrc2 & ~(0x1FF << 15)
    assert (regs[RSRC2] >> 15) & 0x1FF == -(-lds // 512)      # LDS_SIZE in 512-byte granules
    assert regs[RSRC3[target]] == kd.compute_pgm_rsrc3
    other_rsrc3 = ({0x22D, 0x228} - {RSRC3[target]}).pop()
    assert other_rsrc3 not in regs
    assert regs[LIMITS] == 0
    # START_X..Z = 0, NUM_THREAD_X..Z = full | partial << 16 (130 = 2*64 + 2; 3 = 1*2 + 1)
    assert [regs[START_X + k] for k in range(3)] == [0, 0, 0]
    assert [regs[RESTART_X + k] for k in range(3)] == [0, 0, 0]
    assert [regs[NUM_THREAD_X + k] for k in range(3)] == [64 | 2 << 16, 2 | 1 << 16, 1]
    dims = packets[-2][1]
    assert dims[:3] == [3, 2, 1]
    assert dims[3] & 0x7 == 0x7               # COMPUTE_SHADER_EN, PARTIAL_TG_EN, FORCE_START
    assert bool(dims[3] & 0x8000) == (target == "gfx1100" and kd.wavefront_size == 32)
    # user SGPRs: exactly the enabled ones, in ABI order
    expect: list[int] = []
    props = kd.kernel_code_properties
    if props & 1:
        expect += list(scratch.rsrc) if use_scratch else [0, t.scratch_rsrc_word1_flags, 0,
                                                           t.scratch_rsrc_word3]
    if props & 2:
        expect += [0x0002_0000, 0x7F00]
    if props & 4:
        expect += [0x0003_0000, 0x7F00]
    if props & 8:
        expect += [0x0001_0000, 0x7F00]
    if props & 16:
        expect += [5, 1]
    if props & 32:
        expect += [0, 0x7E00] if use_scratch else [0, 0]
    if props & 64:
        expect += [scratch.lane_bytes if use_scratch else 0]
    user = [regs.get(USER_DATA_0 + k) for k in range(len(expect))]
    assert user == expect
    assert USER_DATA_0 + len(expect) not in regs
    assert len(expect) <= kd.user_sgpr_count
    if use_scratch:
        assert regs[TMPRING] == scratch.tmpring_size
        if t.architected_flat_scratch:
            assert (regs[SCRATCH_LO], regs[SCRATCH_HI]) == (0x7E00_0000_0000 >> 8 & 0xFFFFFFFF,
                                                            0x7E)
        else:
            assert SCRATCH_LO not in regs
    else:
        assert regs[TMPRING] == 0 and SCRATCH_LO not in regs


@pytest.mark.parametrize(("target", "acquire"), [
    ("gfx90a", [0x28C00000, 0xFFFFFFFF, 0, 0, 0, 4]),
    ("gfx942", [0x28C00000, 0xFFFFFFFF, 0, 0, 0, 4]),
    ("gfx1100", [0, 0xFFFFFFFF, 0, 0, 0, 4, 0x4381])])
def test_acquire_mem_before_dispatch(target, acquire):
    """G12: ACQUIRE_MEM with kfdtest's full-range invalidation, in the target's form."""
    packets, _ = parse(unbound("copy", target).pm4_dwords(64, 64, 0x1000))
    assert packets[0] == (ACQUIRE_MEM, acquire)


PRELOAD_KERNEL = """
__kernel void pl(__global uint *out, uint a, uint b) {
  out[__builtin_amdgcn_workitem_id_x()] = a + b;
}
"""


@pytest.mark.parametrize("target", ["gfx90a", "gfx942"])
def test_kernarg_preload(target, tmp_path):
    """A descriptor with kernarg_preload: the PM4 path loads the preloaded kernarg dwords into
    the user SGPRs after the enabled ones and starts 256 bytes past the entry (AMDGPUUsage
    "Preloaded Kernel Arguments": the CP skips the compatibility prologue)."""
    import struct
    import subprocess

    from codeobj.oracle import CLANG, LLD

    from pytest_amdgpu.codeobj import build_kernargs, load_code_object

    if CLANG is None or LLD is None:
        pytest.skip("clang-19 / ld.lld-19 not installed")
    src = tmp_path / "pl.cl"
    src.write_text(PRELOAD_KERNEL)
    subprocess.run([CLANG, "-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa",
                    f"-mcpu={target}", "-O2", "-nogpulib", "-mllvm",
                    "-amdgpu-kernarg-preload-count=4", "-c", str(src), "-o",
                    str(tmp_path / "pl.o")], check=True, capture_output=True)
    subprocess.run([LLD, "-shared", str(tmp_path / "pl.o"), "-o", str(tmp_path / "pl.co")],
                   check=True)
    info = load_code_object(tmp_path / "pl.co").kernels["pl"]
    kd = info.descriptor
    assert kd.kernarg_preload_length == 4 and kd.kernarg_preload_offset == 0
    kernel = Kernel.unbound(info, get_target(target), 0x7F00_0000_0000)
    data = build_kernargs(info, [type("B", (), {"gpu_address": 0x7F00_1234_5678})(), 11, 31],
                          grid=64, block=64).data
    _, regs = parse(kernel.pm4_dwords(64, 64, 0x7F00_0001_0000, kernarg_data=data))
    first = 4 if kd.has("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER") else 0   # gfx90a: V# first
    assert not kd.kernel_code_properties & 0b1110110                  # nothing else enabled
    user = [regs[USER_DATA_0 + k] for k in range(first, first + 6)]
    assert user[:2] == [0x0001_0000, 0x7F00]                      # kernarg segment ptr
    assert user[2:] == list(struct.unpack("<4I", data[:16]))     # preloaded dwords 0..3
    assert user[2:] == [0x1234_5678, 0x7F00, 11, 31]
    assert USER_DATA_0 + first + 6 not in regs
    assert kernel.pgm_address == kernel.code_address + 256
    assert (regs[PGM_LO], regs[PGM_HI]) == ((kernel.pgm_address >> 8) & 0xFFFFFFFF, 0x7F)
