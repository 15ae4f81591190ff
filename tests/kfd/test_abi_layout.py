"""Struct layouts, request numbers and constants of the cffi ABI module against the C compiler.

A C program generated here prints sizeof/offsetof of every field of every struct the cffi
module declares (walked from the module itself, so a struct added later is checked without
editing this file), every AMDKFD_IOC_* request and every constant in `_abi_build.CONSTANTS`;
gcc compiles it against the same <linux/kfd_ioctl.h> and the project's drm/drm.h shim.

The project-declared structs (RUNTIME_ENABLE args where the header lacks them, the 96-byte
1.17 CREATE_QUEUE) are checked a second time against declarations written here from the
upstream UAPI header text, with request numbers computed by <linux/ioctl.h>'s _IOWR.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from pytest_amdgpu.kfd import _abi_build
from pytest_amdgpu.kfd.abi import CREATE_QUEUE_V17, IOCTLS, ffi, ioc_dir, ioc_nr, ioc_size, lib

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

INCLUDE_SHIM = pathlib.Path(_abi_build.__file__).resolve().parent / "include"


def _struct_names() -> list[str]:
    return list(ffi.list_types()[1])


def _fields(struct: str):
    return ffi.typeof(f"struct {struct}").fields


# Declarations written for this test from include/uapi/linux/kfd_ioctl.h of KFD 1.13+ (the
# RUNTIME_ENABLE struct) and 1.17 (CREATE_QUEUE gains sdma_engine_id + pad after
# ctl_stack_size). The v17 struct is composed from the header's own 1.11 struct, so its prefix
# is the kernel's layout by construction.
ORACLE_DECLS = r"""
struct oracle_runtime_enable_args {
    __u64 r_debug;
    __u32 mode_mask;
    __u32 capabilities_mask;
};
struct oracle_create_queue_v17 {
    struct kfd_ioctl_create_queue_args v11;
    __u32 sdma_engine_id;
    __u32 pad;
};
"""


def _program() -> str:
    lines = [
        "#include <stddef.h>",
        "#include <stdio.h>",
        "#include <stdint.h>",
        "#include <sys/ioctl.h>",
        "#include <sys/mman.h>",
        "#include <linux/ioctl.h>",
        f"#include <{_abi_build.HEADER}>",
        _abi_build.C_COMPAT,
        ORACLE_DECLS,
        "int main(void) {",
    ]
    for s in _struct_names():
        lines.append(f'printf("S {s} %zu %zu\\n", sizeof(struct {s}), _Alignof(struct {s}));')
        for fname, _f in _fields(s):
            lines.append(
                f'printf("F {s}.{fname} %zu %zu\\n", offsetof(struct {s}, {fname}), '
                f"sizeof(((struct {s} *)0)->{fname}));")
    for name in _abi_build.REQUESTS:
        lines.append(f'printf("R {name} %lu\\n", (unsigned long)(AMDKFD_IOC_{name}));')
        lines.append(f'printf("Z {name} %lu\\n", (unsigned long)_IOC_SIZE(AMDKFD_IOC_{name}));')
        lines.append(f'printf("D {name} %lu\\n", (unsigned long)_IOC_DIR(AMDKFD_IOC_{name}));')
    lines.append('printf("R CREATE_QUEUE_V17 %lu\\n", '
                 "(unsigned long)AMDGPU_KFD_IOC_CREATE_QUEUE_V17);")
    for name in _abi_build.CONSTANTS:
        # the ALLOC flags as the __u32 field they are stored in (WRITABLE is (1 << 31))
        value = f"(__u32)({name})" if name in _abi_build.U32_CONSTANTS else name
        lines.append(f'printf("C {name} %lld\\n", (long long)({value}));')
    # independent declarations of the project-declared structs
    lines += [
        'printf("O runtime_enable.size %zu\\n", sizeof(struct oracle_runtime_enable_args));',
        'printf("O runtime_enable.r_debug %zu\\n", '
        "offsetof(struct oracle_runtime_enable_args, r_debug));",
        'printf("O runtime_enable.mode_mask %zu\\n", '
        "offsetof(struct oracle_runtime_enable_args, mode_mask));",
        'printf("O runtime_enable.capabilities_mask %zu\\n", '
        "offsetof(struct oracle_runtime_enable_args, capabilities_mask));",
        'printf("O runtime_enable.request %lu\\n", '
        "(unsigned long)_IOWR('K', 0x25, struct oracle_runtime_enable_args));",
        'printf("O cq17.size %zu\\n", sizeof(struct oracle_create_queue_v17));',
        'printf("O cq17.sdma_engine_id %zu\\n", '
        "offsetof(struct oracle_create_queue_v17, sdma_engine_id));",
        'printf("O cq17.pad %zu\\n", offsetof(struct oracle_create_queue_v17, pad));',
        'printf("O cq17.request %lu\\n", '
        "(unsigned long)_IOWR('K', 0x02, struct oracle_create_queue_v17));",
        'printf("O ioc_write %lu\\n", (unsigned long)_IOC_WRITE);',
        'printf("O ioc_read %lu\\n", (unsigned long)_IOC_READ);',
    ]
    for fname, _f in _fields("kfd_ioctl_create_queue_args"):
        lines.append(f'printf("P {fname} %zu\\n", offsetof(struct kfd_ioctl_create_queue_args, '
                     f"{fname}));")
    lines += ["return 0;", "}"]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_view(tmp_path_factory) -> dict[str, dict[str, tuple[int, ...]]]:
    include = _abi_build._find_header()
    assert include is not None, _abi_build.INSTALL_HINT
    d = tmp_path_factory.mktemp("abi")
    src = d / "layout.c"
    src.write_text(_program())
    exe = d / "layout"
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Werror", f"-I{INCLUDE_SHIM}",
                    f"-I{include}", str(src), "-o", str(exe)], check=True, capture_output=True,
                   text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    view: dict[str, dict[str, tuple[int, ...]]] = {}
    for line in out.splitlines():
        kind, name, *values = line.split()
        view.setdefault(kind, {})[name] = tuple(int(v) for v in values)
    return view


def test_program_covers_every_struct_of_the_cffi_module(c_view):
    # the walk is driven by the module: everything it declares was measured by gcc
    assert set(c_view["S"]) == set(_struct_names())
    assert len(c_view["S"]) >= 30


@pytest.mark.parametrize("struct", _struct_names())
def test_struct_layout_matches_the_c_compiler(c_view, struct):
    size, align = c_view["S"][struct]
    assert ffi.sizeof(f"struct {struct}") == size
    assert ffi.alignof(f"struct {struct}") == align
    for fname, field in _fields(struct):
        offset, fsize = c_view["F"][f"{struct}.{fname}"]
        assert ffi.offsetof(f"struct {struct}", fname) == offset, fname
        assert field.offset == offset, fname
        assert ffi.sizeof(field.type) == fsize, fname


def test_every_declared_field_is_measured(c_view):
    declared = {f"{s}.{f}" for s in _struct_names() for f, _ in _fields(s)}
    assert declared == set(c_view["F"])


@pytest.mark.parametrize("name", _abi_build.REQUESTS)
def test_request_numbers_match_the_header(c_view, name):
    (request,) = c_view["R"][name]
    assert int(getattr(lib, f"AMDKFD_IOC_{name}")) == request
    spec = IOCTLS[name]
    assert spec.request == request
    # the table pairs each request with the struct whose size the request encodes
    (c_size,) = c_view["Z"][name]
    assert ffi.sizeof(spec.struct) == c_size == spec.size
    assert c_view["S"][spec.struct.removeprefix("struct ")][0] == c_size
    (c_dir,) = c_view["D"][name]
    ioc_write = c_view["O"]["ioc_write"][0]
    ioc_read = c_view["O"]["ioc_read"][0]
    assert ioc_dir(request) == c_dir
    assert spec.copies_in == bool(c_dir & ioc_write)
    assert spec.copies_out == bool(c_dir & ioc_read)
    assert ioc_nr(request) == request & 0xFF == spec.nr


@pytest.mark.parametrize("name", _abi_build.CONSTANTS)
def test_constants_match_the_header(c_view, name):
    (value,) = c_view["C"][name]
    assert int(getattr(lib, name)) == value


def test_alloc_flags_are_unsigned_bits():
    # every ALLOC_MEMORY_OF_GPU flag is one bit of the __u32 flags field (kfd_ioctl.h), so the
    # flags combine with | into the value the driver reads, WRITABLE (1 << 31) included
    assert "KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE" in _abi_build.U32_CONSTANTS
    for name in _abi_build.U32_CONSTANTS:
        value = int(getattr(lib, name))
        assert 0 < value <= 0xFFFFFFFF and value & (value - 1) == 0, name
    both = lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM | lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE
    assert both == 0x80000001


def test_runtime_enable_matches_an_independent_declaration(c_view):
    o = c_view["O"]
    t = "struct kfd_ioctl_runtime_enable_args"
    assert ffi.sizeof(t) == o["runtime_enable.size"][0] == 16
    for f in ("r_debug", "mode_mask", "capabilities_mask"):
        assert ffi.offsetof(t, f) == o[f"runtime_enable.{f}"][0]
    assert int(lib.AMDKFD_IOC_RUNTIME_ENABLE) == o["runtime_enable.request"][0]
    assert IOCTLS["RUNTIME_ENABLE"].request == o["runtime_enable.request"][0]
    assert ioc_nr(IOCTLS["RUNTIME_ENABLE"].request) == 0x25


def test_create_queue_v17_matches_an_independent_declaration(c_view):
    o = c_view["O"]
    t = "struct amdgpu_kfd_create_queue_args_v17"
    assert ffi.sizeof(t) == o["cq17.size"][0] == 96
    assert ffi.offsetof(t, "sdma_engine_id") == o["cq17.sdma_engine_id"][0] == 88
    assert ffi.offsetof(t, "pad") == o["cq17.pad"][0]
    # every 1.11 field sits where the header's struct has it
    for fname, _f in _fields("kfd_ioctl_create_queue_args"):
        assert ffi.offsetof(t, fname) == c_view["P"][fname][0], fname
    request = o["cq17.request"][0]
    assert CREATE_QUEUE_V17.request == int(lib.AMDGPU_KFD_IOC_CREATE_QUEUE_V17) == request
    assert ioc_size(request) == 96 and ioc_nr(request) == 0x02
    assert ioc_nr(IOCTLS["CREATE_QUEUE"].request) == 0x02
    assert ioc_size(IOCTLS["CREATE_QUEUE"].request) == 88
