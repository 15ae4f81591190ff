"""Loading code objects onto a (simulated) device: PT_LOAD segments placed in one executable
buffer, dynamic relocations patched for the load address (checked against llvm-readobj-19's
relocation list), one image per (device, code object), released with the last Kernel."""

from __future__ import annotations

import pytest
from codeobj.oracle import needs_readobj, readobj

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import load_code_object
from pytest_amdgpu.runtime import open_device
from pytest_amdgpu.runtime._util import read_bytes


@pytest.fixture(params=kernels.TARGETS)
def device(request):
    with open_device("sim", target=request.param) as dev:
        yield dev


@needs_readobj
def test_relocations_patched_for_the_load_address(device):
    path = kernels.path("relocated", device.target.name)
    kernel = device.load_kernel(path, "relocated")
    base = kernel.image_base
    oracle = readobj(str(path))
    relocs = [r["Relocation"] for t in oracle["Relocations"] for r in t["Relocs"]]
    assert len(relocs) == 5
    for r in relocs:
        assert r["Type"]["Name"] == "R_AMDGPU_RELATIVE64"       # value = B + A
        got = int.from_bytes(read_bytes(base + r["Offset"], 8), "little")
        assert got == base + r["Addend"]
    symbols = {s["Symbol"]["Name"]["Name"]: s["Symbol"]["Value"] for s in oracle["Symbols"]}
    slots = base + symbols["slots"]
    for k in range(4):   # slots[k] = &counts[k]
        assert int.from_bytes(read_bytes(slots + 8 * k, 8), "little") == \
            base + symbols["counts"] + 4 * k
    kernel.free()


def test_image_contents_descriptor_and_code(device):
    name = "copy"
    co = kernels.load(name, device.target.name)
    kernel = device.load_kernel(name)           # a shipped kernel, by name
    info = co.kernels[name]
    assert kernel.kd_address == kernel.image_base + info.kd_offset
    assert kernel.kd_address % 64 == 0 and kernel.code_address % 256 == 0
    assert read_bytes(kernel.kd_address, 64) == info.descriptor.to_bytes()
    assert kernel.code_address == kernel.kd_address + info.descriptor.kernel_code_entry_byte_offset
    text = co.symbols[name]
    code = co.data[text.value - co.segments[1].vaddr + co.segments[1].offset:][:text.size]
    assert read_bytes(kernel.code_address, len(code)) == code
    for seg in co.segments:        # every PT_LOAD at base + vaddr, zero-filled past filesz
        assert read_bytes(kernel.image_base + seg.vaddr, seg.filesz) == seg.data
        if seg.memsz > seg.filesz:
            assert read_bytes(kernel.image_base + seg.vaddr + seg.filesz,
                              seg.memsz - seg.filesz) == bytes(seg.memsz - seg.filesz)
    kernel.free()


def test_one_image_per_code_object(device):
    a = device.load_kernel("copy")
    b = device.load_kernel(kernels.path("copy", device.target.name))
    c = device.load_kernel(kernels.path("copy", device.target.name).read_bytes(), "copy")
    other = device.load_kernel("fill_id")
    assert a.image_base == b.image_base == c.image_base != other.image_base
    kinds = [o.kind for o in device.live_objects()]
    assert kinds.count("kernel") == 4
    image = a._image.buffer
    a.free()
    b.free()
    assert not image.freed and read_bytes(c.kd_address, 64)
    c.free()
    assert image.freed
    assert [o.kind for o in device.live_objects()] == ["kernel"]
    other.free()
    assert device.live_objects() == []


def test_close_releases_kernels():
    dev = open_device("sim", target="gfx942")
    kernel = dev.load_kernel("empty")
    image = kernel._image.buffer
    leaks = dev.close()
    assert [leak.kind for leak in leaks] == ["kernel"]
    assert kernel.freed and image.freed


def test_name_is_required_for_several_kernels(tmp_path, device):
    from pytest_amdgpu.errors import CodeObjectError, UsageError

    co = load_code_object(kernels.path("copy", device.target.name))
    with pytest.raises(CodeObjectError, match="no kernel 'nope'; kernels here: copy"):
        device.load_kernel(co, "nope")
    kernel = device.load_kernel(co)       # the only kernel
    assert kernel.name == "copy"
    kernel.free()
    with pytest.raises(UsageError):
        kernel.aql_packet(64, 64, 0)
