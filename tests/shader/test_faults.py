"""Faults: VM faults with the faulting address, s_trap, illegal and unimplemented instructions,
instruction fetch from non-executable memory, and cancellation of a kernel that never ends."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pytest_amdgpu.sim.memory import VMFault
from pytest_amdgpu.sim.shader import DispatchCancelled, DispatchRegs, ShaderCore, ShaderException

from .asmkern import asm_kernel, build
from .conftest import TARGETS, needs_llvm
from .harness import Device

pytestmark = needs_llvm


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


@pytest.mark.parametrize("n_buf", [100, 64, 1])
def test_out_of_bounds_store_faults_at_first_bad_address(compiled, target, n_buf):
    d = Device(target, compiled("faults", target))
    out = d.vm.map(4 * n_buf, align=0x1000)        # regions are followed by an unmapped gap
    base = out.start
    assert d.vm.lookup(base + 4 * n_buf + 0x100) is None
    with pytest.raises(VMFault) as ei:
        d.launch("store_all", (256,), (64,), base)
    assert ei.value.write is True
    assert ei.value.address == base + 4 * n_buf
    assert ei.value.reason == "not_present"


def test_store_to_read_only_buffer(compiled, target):
    d = Device(target, compiled("faults", target))
    ro = d.buf(np.zeros(64, np.int32), writable=False)
    with pytest.raises(VMFault) as ei:
        d.launch("store_all", (64,), (64,), ro)
    assert ei.value.write is True and ei.value.reason == "read_only"
    assert ro <= ei.value.address < ro + 256


def test_out_of_bounds_load(compiled, target):
    d = Device(target, compiled("faults", target))
    src = d.vm.map(4 * 10, align=0x1000).start
    out = d.buf(np.zeros(128, np.int32))
    with pytest.raises(VMFault) as ei:
        d.launch("load_all", (128,), (64,), out, src)
    assert ei.value.write is False
    assert ei.value.address == src + 40


def test_s_trap_raises_trap_exception(tmp_path, target):
    co = build(asm_kernel("trapper", "  s_trap 2\n  s_endpgm", kernarg=False), target, tmp_path, "trap")
    d = Device(target, co)
    with pytest.raises(ShaderException) as ei:
        d.launch("trapper", (64,), (64,))
    e = ei.value
    assert e.kind == "trap" and e.trap_id == 2
    assert "s_trap 2" in str(e)
    assert e.pc == d.loaded.base + co.kernels["trapper"].kd_offset + _entry(d, co, "trapper")


def _entry(d, co, name):
    import struct
    kd = d.vm.read(d.loaded.base + co.kernels[name].kd_offset, 64)
    return struct.unpack_from("<q", kd, 16)[0]


def test_illegal_encoding_names_encoding_and_pc(tmp_path, target):
    body = "  v_mov_b32 v1, 0\n  .long 0xBFFF0000\n  s_endpgm"
    co = build(asm_kernel("ill", body, kernarg=False), target, tmp_path, "ill")
    d = Device(target, co)
    with pytest.raises(ShaderException) as ei:
        d.launch("ill", (64,), (64,))
    e = ei.value
    assert e.kind == "illegal_instruction"
    start = d.loaded.base + co.kernels["ill"].kd_offset + _entry(d, co, "ill")
    assert e.pc == start + 4                          # v_mov_b32 is 4 bytes
    assert "BFFF0000" in e.encoding and f"{e.pc:x}" in str(e)


def test_vgpr_beyond_allocation_is_illegal(tmp_path, target):
    """A VGPR past COMPUTE_PGM_RSRC1's allocation is named as such, not as a simulator failure."""
    body = "  v_mov_b32 v1, 0\n  v_mov_b32 v200, 0\n  s_endpgm"
    co = build(asm_kernel("over", body, kernarg=False, vgprs=8), target, tmp_path, "over")
    d = Device(target, co)
    with pytest.raises(ShaderException) as ei:
        d.launch("over", (64,), (64,))
    e = ei.value
    assert e.kind == "illegal_instruction"
    assert e.mnemonic.startswith("v_mov_b32") and "v200, 0" in str(e)
    assert "outside the wave's allocation" in str(e)
    start = d.loaded.base + co.kernels["over"].kd_offset + _entry(d, co, "over")
    assert e.pc == start + 4


UNIMPLEMENTED = {
    # a valid instruction the core does not implement: named as llvm-objdump names it
    "gfx90a": ("v_mfma_f32_4x4x1f32 a[0:3], v0, v1, a[0:3]", "v_mfma_f32_4x4x1f32"),
    "gfx942": ("v_mfma_f32_4x4x1_16b_f32 a[0:3], v0, v1, a[0:3]", "v_mfma_f32_4x4x1_16b_f32"),
    "gfx1100": ("v_wmma_f32_16x16x16_f16 v[0:7], v[8:15], v[16:23], v[0:7]", "v_wmma_f32_16x16x16_f16"),
}


def test_unimplemented_instruction_is_named(tmp_path, target):
    asm, name = UNIMPLEMENTED[target]
    co = build(asm_kernel("unimpl", f"  {asm}\n  s_endpgm", kernarg=False, vgprs=24), target, tmp_path, "unimpl")
    d = Device(target, co)
    with pytest.raises(ShaderException) as ei:
        d.launch("unimpl", (64,), (64,))
    e = ei.value
    assert e.kind == "illegal_instruction"
    assert e.mnemonic == name and name in str(e)
    start = d.loaded.base + co.kernels["unimpl"].kd_offset + _entry(d, co, "unimpl")
    assert e.pc == start and f"0x{start:x}" in str(e)
    words = np.frombuffer(d.vm.read(start, 8), np.uint32)     # VOP3P / MAI: two dwords
    assert e.encoding == " ".join(f"{w:08X}" for w in words) and e.encoding in str(e)


def test_unimplemented_instruction_on_untaken_path_is_harmless(tmp_path, target):
    asm, _ = UNIMPLEMENTED[target]
    body = f"  s_branch .Lskip\n  {asm}\n.Lskip:\n  s_endpgm"
    co = build(asm_kernel("skip", body, kernarg=False, vgprs=24), target, tmp_path, "skip")
    d = Device(target, co)
    d.launch("skip", (64,), (64,))


def test_fetch_from_non_executable_memory_faults(target):
    from .fakevm import FakeVM
    vm = FakeVM()
    code = vm.alloc(np.array([0xBF810000] * 4, np.uint32), executable=False)
    regs = DispatchRegs(pgm_addr=code, rsrc2=1 << 7, grid=(64, 1, 1), workgroup=(64, 1, 1),
                        wave32=target == "gfx1100")
    with pytest.raises(VMFault) as ei:
        ShaderCore(target).run(vm, regs, cancel=threading.Event())
    assert ei.value.address == code and ei.value.reason == "no_execute"


def test_fetch_from_unmapped_pc_faults(target):
    from .fakevm import FakeVM
    vm = FakeVM()
    regs = DispatchRegs(pgm_addr=0x1234_0000, grid=(64, 1, 1), workgroup=(64, 1, 1))
    with pytest.raises(VMFault) as ei:
        ShaderCore(target).run(vm, regs, cancel=threading.Event())
    assert ei.value.address == 0x1234_0000 and ei.value.reason == "not_present"


def test_endless_kernel_ends_when_cancelled(compiled, target):
    d = Device(target, compiled("faults", target))
    flag = d.buf(np.zeros(1, np.int32))
    cancel = threading.Event()
    err: list[BaseException] = []

    def go():
        try:
            d.launch("spin", (256,), (64,), flag, cancel=cancel)
        except BaseException as exc:
            err.append(exc)

    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()                               # it really spins
    cancel.set()
    t.join(10)
    assert not t.is_alive()
    assert len(err) == 1 and isinstance(err[0], DispatchCancelled)


def test_spinning_kernel_sees_flag_written_by_host(compiled, target):
    d = Device(target, compiled("faults", target))
    flag = d.buf(np.zeros(1, np.int32))
    cancel = threading.Event()
    t = threading.Thread(target=lambda: d.launch("spin", (128,), (64,), flag, cancel=cancel))
    t.start()
    time.sleep(0.2)
    d.vm.write(flag, np.int32(1).tobytes())
    t.join(10)
    cancel.set()
    assert not t.is_alive()


def test_out_of_bounds_store_on_the_drivers_gpuvm(compiled, target):
    from .realvm import RealVM
    vm = RealVM()
    try:
        d = Device(target, compiled("faults", target), vm=vm)
        m = vm.map(4096)
        with pytest.raises(VMFault) as ei:
            d.launch("store_all", (2048,), (256,), m.start)
        assert ei.value.write is True and ei.value.address == m.start + 4096
    finally:
        vm.close()


def test_register_outside_the_allocation_is_named(tmp_path, target):
    """A VGPR beyond COMPUTE_PGM_RSRC1.VGPRS: an illegal-instruction exception naming the
    instruction, its PC and encoding (the hardware has no such register for the wave)."""
    co = build(asm_kernel("oob_vgpr", "  v_mov_b32 v1, 0\n  v_mov_b32 v200, v1\n  s_endpgm", kernarg=False, vgprs=8),
               target, tmp_path, "oob_vgpr")
    d = Device(target, co)
    with pytest.raises(ShaderException) as ei:
        d.launch("oob_vgpr", (64,), (64,))
    e = ei.value
    start = d.loaded.base + co.kernels["oob_vgpr"].kd_offset + _entry(d, co, "oob_vgpr")
    assert e.kind == "illegal_instruction" and e.pc == start + 4
    assert "v_mov_b32_e32 v200, v1" in str(e) and e.encoding in str(e) and "allocation" in str(e)


def test_only_register_file_index_errors_count_as_outside_the_allocation():
    """An IndexError from a register file (VGPRs / AGPRs on axis 0, SGPRs on axis 1, by their
    sizes) is the program's fault; any other IndexError is the simulator's own."""
    from pytest_amdgpu.sim.shader.core import _register_overflow
    from pytest_amdgpu.sim.shader.state import Batch

    b = Batch(2, 64, 8, 4)
    assert _register_overflow(IndexError("index 9 is out of bounds for axis 0 with size 8"), b)
    assert _register_overflow(IndexError("index 5 is out of bounds for axis 0 with size 4"), b)
    assert _register_overflow(IndexError("index 130 is out of bounds for axis 1 with size 128"), b)
    assert not _register_overflow(IndexError("index 400 is out of bounds for axis 0 with size 1"), b)
    assert not _register_overflow(IndexError("list index out of range"), b)
