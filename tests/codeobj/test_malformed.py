"""Bad input gives a CodeObjectError that says what is wrong, never another exception."""

from __future__ import annotations

import random
import struct

import msgpack
import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import load_code_object
from pytest_amdgpu.codeobj.elf import R_AMDGPU, Relocation, Symbol, apply_relocations
from pytest_amdgpu.errors import CodeObjectError

GOOD = kernels.path("copy", "gfx942").read_bytes()


def _patched(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(GOOD)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not an ELF file"),
    (b"MZ" + bytes(100), "not an ELF file"),
    (_patched(4, "<B", 1), "ELF64 little-endian"),                # ELFCLASS32
    (_patched(18, "<H", 62), "not EM_AMDGPU"),                    # x86-64
    (_patched(7, "<B", 65), "ELFOSABI_AMDGPU_HSA"),               # PAL
    (_patched(8, "<B", 0), "code object v2 is not supported"),
    (_patched(8, "<B", 9), "names no known code object version"),
    (_patched(16, "<H", 1), "not ET_DYN"),                        # a relocatable .o
])
def test_header_errors(data, message):
    with pytest.raises(CodeObjectError, match=message):
        load_code_object(data)


@pytest.mark.parametrize("name", ["copy", "relocated", "scratch"])
def test_truncations_and_corruptions_only_raise_code_object_errors(name):
    good = kernels.path(name, "gfx90a").read_bytes()
    rng = random.Random(name)
    for _ in range(80):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.25:
            data = data[:rng.randrange(len(data))]
        try:
            co = load_code_object(bytes(data))
            for kernel in co.kernels.values():
                kernel.descriptor.describe()
            co.image(0x7F00_0000_0000)
        except CodeObjectError:
            pass


def test_metadata_errors():
    co = load_code_object(GOOD)
    old = co.elf.metadata_note()
    root = dict(co.metadata.raw)
    root["amdhsa.version"] = [2, 0]
    blob = msgpack.packb(root)
    assert len(blob) == len(old)
    data = bytearray(GOOD)
    at = data.find(old)
    data[at:at + len(old)] = blob
    with pytest.raises(CodeObjectError, match=r"amdhsa\.version"):
        load_code_object(bytes(data))
    data[at:at + len(old)] = b"\xc1" * len(old)          # 0xc1 is never valid msgpack
    with pytest.raises(CodeObjectError, match="msgpack"):
        load_code_object(bytes(data))


def test_missing_kernel_descriptor_symbol():
    co = load_code_object(GOOD)
    old = co.elf.metadata_note()
    root = dict(co.metadata.raw)
    kernel = dict(root["amdhsa.kernels"][0])
    kernel[".symbol"] = "copx.kd"
    root["amdhsa.kernels"] = [kernel]
    blob = msgpack.packb(root)
    data = bytearray(GOOD)
    at = data.find(old)
    data[at:at + len(old)] = blob
    with pytest.raises(CodeObjectError, match=r"'copx\.kd'"):
        load_code_object(bytes(data))


def test_relocation_formulas():
    """AMDGPUUsage relocation table: S + A, S + A - P, B + A, low/high halves."""
    base = 0x7F00_0000_0000
    sym = Symbol("g", 0x2000, 8, "STT_OBJECT", "STB_GLOBAL", "STV_PROTECTED", 5, ".data")
    relocs = [
        Relocation(0x00, R_AMDGPU["R_AMDGPU_RELATIVE64"], None, 0x1234),
        Relocation(0x08, R_AMDGPU["R_AMDGPU_ABS64"], sym, 0x10),
        Relocation(0x10, R_AMDGPU["R_AMDGPU_ABS32_LO"], sym, 0x10),
        Relocation(0x14, R_AMDGPU["R_AMDGPU_ABS32_HI"], sym, 0x10),
        Relocation(0x18, R_AMDGPU["R_AMDGPU_REL64"], sym, 4),
        Relocation(0x20, R_AMDGPU["R_AMDGPU_REL32_LO"], sym, 4),
        Relocation(0x24, R_AMDGPU["R_AMDGPU_REL32_HI"], sym, -0x100000),
    ]
    image = bytearray(0x40)
    apply_relocations(image, relocs, base)
    s = base + 0x2000
    q = lambda o: struct.unpack_from("<Q", image, o)[0]   # noqa: E731
    d = lambda o: struct.unpack_from("<I", image, o)[0]   # noqa: E731
    assert q(0x00) == base + 0x1234
    assert q(0x08) == s + 0x10
    assert (d(0x10), d(0x14)) == ((s + 0x10) & 0xFFFFFFFF, (s + 0x10) >> 32)
    assert q(0x18) == s + 4 - (base + 0x18)
    assert d(0x20) == (s + 4 - (base + 0x20)) & 0xFFFFFFFF
    assert d(0x24) == ((s - 0x100000 - (base + 0x24)) >> 32) & 0xFFFFFFFF
    undefined = Symbol("ext", 0, 0, "STT_NOTYPE", "STB_GLOBAL", "STV_DEFAULT", "SHN_UNDEF", "")
    with pytest.raises(CodeObjectError, match="undefined symbol 'ext'"):
        apply_relocations(bytearray(16), [Relocation(0, 3, undefined, 0)], base)
    with pytest.raises(CodeObjectError, match="not supported"):
        apply_relocations(bytearray(16), [Relocation(0, 7, sym, 0)], base)
    with pytest.raises(CodeObjectError, match="outside"):
        apply_relocations(bytearray(16), [Relocation(12, 13, None, 0)], base)


def test_image_at_a_base_applies_relocations():
    co = kernels.load("relocated", "gfx90a")
    for base in (0, 0x1000, 0x7F12_3456_0000):
        image = co.image(base)
        for r in co.relocations:
            assert struct.unpack_from("<Q", image, r.offset)[0] == base + r.addend
    with pytest.raises(CodeObjectError, match="not aligned"):
        co.image(0x800)
