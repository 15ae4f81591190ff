"""Kernarg segments: explicit arguments land at the offsets llvm-readobj-19 reports for
clang-19 kernels with every argument type, packed as C would (struct.pack here); hidden
arguments hold the published v5 values (facts-sdma-aql-codeobj.md §5.1, §6.4)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import LocalMemory, build_kernargs, load_code_object
from pytest_amdgpu.errors import UsageError

from .oracle import needs_clang, needs_readobj, readobj_metadata
from .test_metadata_oracle import (
    APERTURE_KERNEL,
    HIDDEN_KERNEL,
    PRINTF_KERNEL,
    V4_HIDDEN,
    V5_HIDDEN,
    build_cl,
)


class Buf:
    """Anything with an int gpu_address is a buffer to the kernarg builder."""

    def __init__(self, address: int) -> None:
        self.gpu_address = address


POD = struct.pack("<ib3xd", -77, -3, 6.0625)
MIXED = {"out": Buf(0x7F00_1234_5678), "c": -5, "uc": 200, "s": -1234, "us": 54321,
         "i": -123456789, "ui": 0xDEADBEEF, "l": -0x123456789ABC, "ul": 0xFEDCBA9876543210,
         "f": 3.25, "d": -2.5e-3, "p": POD, "v": np.array([1, -2, 3, 40], np.int32)}
# C types of mixed_args' parameters, as struct formats
C_FORMAT = {"c": "<b", "uc": "<B", "s": "<h", "us": "<H", "i": "<i", "ui": "<I", "l": "<q",
            "ul": "<Q", "f": "<f", "d": "<d"}


def _oracle_args(path) -> dict[str, tuple[int, int]]:
    md = readobj_metadata(str(path))["amdhsa.kernels"][0]
    return {a[".name"]: (a[".offset"], a[".size"]) for a in md[".args"] if ".name" in a}


@needs_readobj
@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize("by_name", [True, False])
def test_mixed_argument_types(target, by_name):
    path = kernels.path("mixed_args", target)
    kernel = load_code_object(path).kernels["mixed_args"]
    offsets = _oracle_args(path)
    args = MIXED if by_name else [MIXED[a.name] for a in kernel.explicit_args]
    data = build_kernargs(kernel, args, grid=64, block=64).data
    off, size = offsets["out"]
    assert size == 8 and data[off:off + 8] == struct.pack("<Q", 0x7F00_1234_5678)
    for name, fmt in C_FORMAT.items():
        off, size = offsets[name]
        assert size == struct.calcsize(fmt), name
        assert data[off:off + size] == struct.pack(fmt, MIXED[name]), name
    off, size = offsets["p"]
    assert (size, data[off:off + size]) == (16, POD)
    off, size = offsets["v"]
    assert (size, data[off:off + size]) == (16, struct.pack("<4i", 1, -2, 3, 40))


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_numpy_scalars_pack_like_python_values(target):
    kernel = kernels.load("mixed_args", target).kernels["mixed_args"]
    typed = dict(MIXED, c=np.int8(-5), uc=np.uint8(200), s=np.int16(-1234),
                 us=np.uint16(54321), i=np.int32(-123456789), ui=np.uint32(0xDEADBEEF),
                 l=np.int64(-0x123456789ABC), ul=np.uint64(0xFEDCBA9876543210),
                 f=np.float32(3.25), d=np.float64(-2.5e-3))
    assert build_kernargs(kernel, typed, grid=1, block=1).data == \
        build_kernargs(kernel, MIXED, grid=1, block=1).data


# facts-sdma-aql-codeobj.md §6.4: the first 72 bytes of the v5 hidden block for a 1-D grid of
# 1024 work-items in work-groups of 256.
GOLDEN_HIDDEN = bytes.fromhex(
    "04000000010000000100000000010100"
    "01000000000000000000000000000000"
    + "00" * 32 +
    "0100000000000000")


@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize(("name", "base"), [("fill_id", 16), ("hidden_args", 8)])
def test_hidden_block_golden(target, name, base):
    kernel = kernels.load(name, target).kernels[name]
    explicit = [Buf(0x1000), 1024][:len(kernel.explicit_args)]
    data = build_kernargs(kernel, explicit, grid=1024, block=256).data
    first_hidden = min(a.offset for a in kernel.metadata.hidden_args)
    assert first_hidden == base
    assert data[base:base + 72] == GOLDEN_HIDDEN


def test_partial_3d_geometry():
    kernel = kernels.load("grid3d", "gfx942").kernels["grid3d"]
    data = build_kernargs(kernel, [Buf(0x2000), Buf(0x3000)], grid=(10, 7, 5),
                          block=(4, 4, 2), global_offset=(3, 0, 1 << 40)).data
    hidden = {a.value_kind: a for a in kernel.metadata.hidden_args}

    def at(kind):
        a = hidden[kind]
        return int.from_bytes(data[a.offset:a.offset + a.size], "little")

    assert [at(f"hidden_block_count_{d}") for d in "xyz"] == [2, 1, 2]
    assert [at(f"hidden_group_size_{d}") for d in "xyz"] == [4, 4, 2]
    assert [at(f"hidden_remainder_{d}") for d in "xyz"] == [2, 3, 1]
    assert [at(f"hidden_global_offset_{d}") for d in "xyz"] == [3, 0, 1 << 40]
    assert at("hidden_grid_dims") == 3


@needs_clang
@needs_readobj
@pytest.mark.parametrize(("version", "layout"), [(4, V4_HIDDEN), (5, V5_HIDDEN)])
def test_runtime_hidden_values(tmp_path, version, layout):
    path = build_cl(tmp_path, HIDDEN_KERNEL, "gfx942", version)
    kernel = load_code_object(path).kernels["every_hidden"]
    md = readobj_metadata(str(path))["amdhsa.kernels"][0]
    offsets = {a[".value_kind"]: a[".offset"] for a in md[".args"]}
    provided = {"queue_ptr": 0x7F00_0000_AA00, "hostcall_buffer": 0x7F00_0000_BB00,
                "hidden_heap_v1": 0x7F00_0000_CC00, "multigrid_sync_arg": 0x1234,
                "default_queue": 0x5678, "completion_action": 0x9ABC}
    ka = build_kernargs(kernel, [Buf(0x4000), 7, LocalMemory(1000)], grid=(100, 3),
                        block=(32, 2), global_offset=(5, 6), hidden=provided)
    want = {"hidden_block_count_x": 3, "hidden_block_count_y": 1, "hidden_block_count_z": 1,
            "hidden_group_size_x": 32, "hidden_group_size_y": 2, "hidden_group_size_z": 1,
            "hidden_remainder_x": 4, "hidden_remainder_y": 1, "hidden_remainder_z": 0,
            "hidden_global_offset_x": 5, "hidden_global_offset_y": 6,
            "hidden_global_offset_z": 0, "hidden_grid_dims": 2,
            "hidden_dynamic_lds_size": 1000, "hidden_queue_ptr": 0x7F00_0000_AA00,
            "hidden_hostcall_buffer": 0x7F00_0000_BB00, "hidden_heap_v1": 0x7F00_0000_CC00,
            "hidden_multigrid_sync_arg": 0x1234, "hidden_default_queue": 0x5678,
            "hidden_completion_action": 0x9ABC}
    sizes = {a.value_kind: a.size for a in kernel.metadata.hidden_args}
    assert set(offsets) - {"global_buffer", "by_value", "dynamic_shared_pointer"} == set(layout)
    for kind in layout:
        off = offsets[kind]
        assert int.from_bytes(ka.data[off:off + sizes[kind]], "little") == want[kind], kind
    # the __local pointer: LDS offset right after the (here empty) static LDS
    off = offsets["dynamic_shared_pointer"]
    assert ka.data[off:off + 4] == struct.pack("<I", 0)
    assert (ka.dynamic_lds_size, ka.group_segment_size) == (1000, 1000)
    assert len(ka.data) == md[".kernarg_segment_size"]


def test_dynamic_lds_after_static():
    kernel = kernels.load("local_arg_reduce", "gfx942").kernels["local_arg_reduce"]
    ka = build_kernargs(kernel, [Buf(1), Buf(2), LocalMemory(512), 10], grid=128, block=128)
    part = next(a for a in kernel.explicit_args if a.name == "part")
    align = max(part.pointee_align or 16, 4)
    start = -(-kernel.group_segment_size // align) * align
    assert struct.unpack_from("<I", ka.data, part.offset)[0] == start
    assert ka.group_segment_size == start + 512 and ka.dynamic_lds_size == ka.group_segment_size \
        - kernel.group_segment_size


@pytest.mark.parametrize(("args", "message"), [
    ([Buf(1), Buf(2)], r"takes 4 argument\(s\) \(#0 'a' \(float\), #1 'x'"),
    ({"a": 1.0, "x": Buf(1), "y": Buf(2), "cnt": 3}, "no argument named 'cnt'"),
    ({"a": 1.0, "x": Buf(1), "y": Buf(2)}, "missing argument.*'count'"),
    ([1.0, Buf(1), Buf(2), 2.5], r"#3 'count' \(uint\) is an integer; got the float 2.5"),
    ([1.0, Buf(1), Buf(2), 1 << 32], "does not fit 4 bytes"),
    ([1.0, Buf(1), Buf(2), -(1 << 31) - 1], "does not fit 4 bytes"),
    ([Buf(5), Buf(1), Buf(2), 3], r"#0 'a' \(float\) is passed by value"),
    ([1.0, np.zeros(4, np.float32), Buf(2), 3], "copy host data into a device Buffer"),
    ([1.0, 3.5, Buf(2), 3], r"#1 'x' \(float\*\) is a global_buffer"),
    ([np.float64(1.0), Buf(1), Buf(2), 3], "is 4 bytes; got numpy float64"),
    ([1.0, Buf(1), Buf(2), np.float32(3)], "does not match the parameter type uint"),
    ([1.0, Buf(1), Buf(2), b"\x01\x02"], "is 4 bytes by value; got 2 bytes"),
])
def test_argument_errors_name_the_argument(args, message):
    kernel = kernels.load("saxpy", "gfx1100").kernels["saxpy"]
    with pytest.raises(UsageError, match=message):
        build_kernargs(kernel, args, grid=1, block=1)


@pytest.mark.parametrize(("grid", "block", "message"), [
    (100, 512, "at most 256"),                  # clang's default .max_flat_workgroup_size
    (100, 0, "block x = 0"),
    (0, 64, "grid x = 0"),
    ((1, 2, 3, 4), 1, "1-3 dimensions"),
    (1 << 32, 64, "grid x"),
])
def test_geometry_errors(grid, block, message):
    kernel = kernels.load("saxpy", "gfx942").kernels["saxpy"]
    with pytest.raises(UsageError, match=message):
        build_kernargs(kernel, [1.0, Buf(1), Buf(2), 3], grid=grid, block=block)


def test_int_converts_for_float_and_local_needs_localmemory():
    kernel = kernels.load("saxpy", "gfx942").kernels["saxpy"]
    data = build_kernargs(kernel, [2, Buf(1), Buf(2), 3], grid=1, block=1).data
    assert data[0:4] == struct.pack("<f", 2.0)
    lar = kernels.load("local_arg_reduce", "gfx942").kernels["local_arg_reduce"]
    with pytest.raises(UsageError, match="LocalMemory"):
        build_kernargs(lar, [Buf(1), Buf(2), 512, 10], grid=1, block=1)


@needs_clang
@needs_readobj
@pytest.mark.parametrize(("source", "name", "target", "version", "provided"), [
    (PRINTF_KERNEL, "pk", "gfx942", 4, {"printf_buffer": 0x7F00_0000_DD00}),
    (PRINTF_KERNEL, "pk", "gfx942", 5, {"hidden_printf_buffer": 0x7F00_0000_DD00}),
    # the high halves of the flat aperture bases: scratch 2 << 48, LDS 1 << 48 (facts-kfd §2.2)
    (APERTURE_KERNEL, "ak", "gfx803", 5, {"private_base": 0x20000, "shared_base": 0x10000}),
], ids=["printf-v4", "printf-v5", "apertures-v5"])
def test_supplied_hidden_values_land_at_their_offsets(tmp_path, source, name, target, version,
                                                      provided):
    """Values the runtime owns (printf buffer, aperture bases) reach the offsets llvm-readobj
    reports, with or without the hidden_ prefix; every other hidden argument the runtime
    cannot know stays 0."""
    path = build_cl(tmp_path, source, target, version, name=name)
    kernel = load_code_object(path).kernels[name]
    md = readobj_metadata(str(path))["amdhsa.kernels"][0]
    where = {a[".value_kind"]: (a[".offset"], a[".size"]) for a in md[".args"]}
    data = build_kernargs(kernel, [Buf(0x5000), 9], grid=64, block=64, hidden=provided).data
    got = {}
    for kind, (off, size) in where.items():
        got[kind] = int.from_bytes(data[off:off + size], "little")
    for key, value in provided.items():
        kind = key if key.startswith("hidden_") else "hidden_" + key
        assert got[kind] == value, kind
    for kind in ("hidden_default_queue", "hidden_completion_action", "hidden_multigrid_sync_arg",
                 "hidden_hostcall_buffer", "hidden_heap_v1"):
        if kind in got:
            assert got[kind] == 0, kind


def test_hidden_none_slot_stays_zero():
    """hidden_none marks a slot a kernel skips (AMDGPUUsage): it is parsed and left 0; a value
    for it, or for a kind AMDGPUUsage does not define, is refused (a misspelt name would
    otherwise leave its argument 0 without a word)."""
    from pytest_amdgpu.codeobj import KernelArg
    from pytest_amdgpu.codeobj.metadata import KernelMetadata

    args = (KernelArg(0, 0, 8, "global_buffer", name="out"),
            KernelArg(1, 8, 8, "hidden_global_offset_x"),
            KernelArg(2, 16, 8, "hidden_none"),
            KernelArg(3, 24, 8, "hidden_default_queue"))
    md = KernelMetadata(name="k", symbol="k.kd", args=args, kernarg_segment_size=32,
                        kernarg_segment_align=8, group_segment_fixed_size=0,
                        private_segment_fixed_size=0, wavefront_size=64, sgpr_count=8,
                        vgpr_count=4, max_flat_workgroup_size=256)

    class Info:
        metadata = md
        name = "k"
        kernarg_size = 32
        group_segment_size = 0

    data = build_kernargs(Info(), [Buf(0x9000)], grid=64, block=64, global_offset=(7,),
                          hidden={"default_queue": 0x1234}).data
    assert struct.unpack("<QQQQ", data) == (0x9000, 7, 0, 0x1234)
    for key in ("none", "hidden_none", "queue_pointer"):
        with pytest.raises(UsageError, match="not a hidden argument value kind"):
            build_kernargs(Info(), [Buf(0x9000)], grid=64, block=64, hidden={key: 1})



def _template_cases():
    saxpy = [1.0, Buf(0x10), Buf(0x20), 3]
    return [
        ("saxpy", saxpy, None),
        ("saxpy", {"a": 2.5, "x": Buf(1), "y": Buf(2), "count": 7}, {"queue_ptr": 0x7F00}),
        ("mixed_args", MIXED, None),
        ("local_arg_reduce", [Buf(1), Buf(2), LocalMemory(512), 10], None),
        ("local_arg_reduce", [Buf(1), Buf(2), LocalMemory(0), 10], {"dynamic_lds_size": 9}),
        ("hidden_args", [Buf(3)], {"queue_ptr": 0x1234, "private_base": 5}),
        ("empty", [], {"queue_ptr": 0x1234}),
        ("empty", (), None),
    ]


@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize(("name", "args", "hidden"), _template_cases())
def test_template_packs_what_pack_kernargs_packs(target, name, args, hidden):
    """KernargTemplate (the hidden arguments written once per geometry) gives the bytes and
    LDS sizes of pack_kernargs, for one geometry after another."""
    from pytest_amdgpu.codeobj.kernarg import KernargTemplate, make_geometry, pack_kernargs

    kernel = kernels.load(name, target).kernels[name]
    for grid, block, offset in [(1000, 128, (0, 0, 0)), ((100, 9, 4), (32, 4, 2), (3, 2, 1))]:
        geom = make_geometry(grid, block, offset, max_workgroup_size=1024)
        tpl = KernargTemplate(kernel, geom, hidden=hidden)
        for _ in range(2):
            assert tpl.pack(args) == pack_kernargs(kernel, args, geom, hidden=hidden)


def test_template_raises_what_pack_kernargs_raises_in_the_same_order():
    from pytest_amdgpu.codeobj.kernarg import KernargTemplate, make_geometry

    kernel = kernels.load("saxpy", "gfx942").kernels["saxpy"]
    geom = make_geometry(64, 64)
    tpl = KernargTemplate(kernel, geom, hidden={"no_such_kind": 1})
    with pytest.raises(UsageError, match="takes 4 argument"):    # the arguments first …
        tpl.pack([1.0])
    with pytest.raises(UsageError, match="no_such_kind"):        # … then the hidden values
        tpl.pack([1.0, Buf(1), Buf(2), 3])
    tpl = KernargTemplate(kernel, geom)
    for args, message in [([1.0, Buf(1), Buf(2), 1 << 32], "does not fit 4 bytes"),
                          ([Buf(5), Buf(1), Buf(2), 3], "is passed by value")]:
        with pytest.raises(UsageError, match=message):
            tpl.pack(args)
    assert tpl.pack([1.0, Buf(1), Buf(2), 3]) == build_kernargs(
        kernel, [1.0, Buf(1), Buf(2), 3], grid=64, block=64)
