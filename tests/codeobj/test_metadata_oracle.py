"""The NT_AMDGPU_METADATA note as codeobj parses it, checked against llvm-readobj-19's rendering
of the same note, for every shipped code object and for clang-19 kernels that use every hidden
argument (code object v4 and v5)."""

from __future__ import annotations

import subprocess

import pytest

from pytest_amdgpu.codeobj import load_code_object
from pytest_amdgpu.codeobj.metadata import HIDDEN_VALUE_KINDS

from .oracle import CLANG, LLD, needs_clang, needs_readobj, prebuilt, prebuilt_ids, readobj_metadata

pytestmark = needs_readobj

_TYPED_KERNEL_KEYS = {
    ".name": "name", ".symbol": "symbol", ".kernarg_segment_size": "kernarg_segment_size",
    ".kernarg_segment_align": "kernarg_segment_align",
    ".group_segment_fixed_size": "group_segment_fixed_size",
    ".private_segment_fixed_size": "private_segment_fixed_size",
    ".wavefront_size": "wavefront_size", ".sgpr_count": "sgpr_count",
    ".vgpr_count": "vgpr_count", ".agpr_count": "agpr_count",
    ".max_flat_workgroup_size": "max_flat_workgroup_size",
    ".sgpr_spill_count": "sgpr_spill_count", ".vgpr_spill_count": "vgpr_spill_count",
    ".language": "language", ".uses_dynamic_stack": "uses_dynamic_stack",
}
_TYPED_ARG_KEYS = {
    ".name": "name", ".type_name": "type_name", ".offset": "offset", ".size": "size",
    ".value_kind": "value_kind", ".address_space": "address_space", ".access": "access",
    ".actual_access": "actual_access", ".pointee_align": "pointee_align",
    ".is_const": "is_const", ".is_restrict": "is_restrict", ".is_volatile": "is_volatile",
}


def _check_against(co, oracle: dict) -> None:
    md = co.metadata
    assert md.raw == oracle
    assert list(md.version) == oracle["amdhsa.version"]
    assert md.target == oracle.get("amdhsa.target")
    assert [k.name for k in md.kernels] == [k[".name"] for k in oracle["amdhsa.kernels"]]
    for kmd, kor in zip(md.kernels, oracle["amdhsa.kernels"]):
        for key, attr in _TYPED_KERNEL_KEYS.items():
            if key in kor:
                assert getattr(kmd, attr) == kor[key], key
        if ".language_version" in kor:
            assert list(kmd.language_version) == kor[".language_version"]
        assert len(kmd.args) == len(kor.get(".args", []))
        for arg, aor in zip(kmd.args, kor.get(".args", [])):
            for key, attr in _TYPED_ARG_KEYS.items():
                if key in aor:
                    assert getattr(arg, attr) == aor[key], (arg.index, key)
            assert arg.is_hidden == aor[".value_kind"].startswith("hidden_")
        assert co.kernels[kmd.name].metadata is kmd


@pytest.mark.parametrize(("name", "target", "path"), prebuilt(), ids=prebuilt_ids())
def test_shipped_metadata(name, target, path):
    co = load_code_object(path)
    _check_against(co, readobj_metadata(str(path)))
    assert co.metadata.target.endswith(target)
    assert [k.name for k in co.metadata.kernels] == [name]


HIDDEN_KERNEL = """
__kernel void every_hidden(__global uint *out, uint k, __local float *scratch) {
  __constant uint *p = (__constant uint *)__builtin_amdgcn_implicitarg_ptr();
  out[0] = p[k];
  scratch[k] = 1.0f;
}
"""

# LLVM 19's hidden argument offsets, relative to the hidden block (AMDGPUUsage "Code Object V5
# Metadata" / facts-sdma-aql-codeobj.md §5.1; v4: the 56-byte block of §5.1's last paragraph).
V5_HIDDEN = {"hidden_block_count_x": 0, "hidden_block_count_y": 4, "hidden_block_count_z": 8,
             "hidden_group_size_x": 12, "hidden_group_size_y": 14, "hidden_group_size_z": 16,
             "hidden_remainder_x": 18, "hidden_remainder_y": 20, "hidden_remainder_z": 22,
             "hidden_global_offset_x": 40, "hidden_global_offset_y": 48,
             "hidden_global_offset_z": 56, "hidden_grid_dims": 64,
             "hidden_hostcall_buffer": 80, "hidden_multigrid_sync_arg": 88,
             "hidden_heap_v1": 96, "hidden_default_queue": 104,
             "hidden_completion_action": 112, "hidden_dynamic_lds_size": 120,
             "hidden_queue_ptr": 200}
V4_HIDDEN = {"hidden_global_offset_x": 0, "hidden_global_offset_y": 8,
             "hidden_global_offset_z": 16, "hidden_hostcall_buffer": 24,
             "hidden_default_queue": 32, "hidden_completion_action": 40,
             "hidden_multigrid_sync_arg": 48}


def build_cl(tmp_path, source: str, target: str, version: int = 5, name: str = "k"):
    src = tmp_path / f"{name}.cl"
    src.write_text(source)
    obj, co = tmp_path / f"{name}.o", tmp_path / f"{name}-{target}-v{version}.co"
    subprocess.run([CLANG, "-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa",
                    f"-mcpu={target}", "-O2", "-nogpulib", "-cl-kernel-arg-info",
                    f"-mcode-object-version={version}", "-c", str(src), "-o", str(obj)],
                   check=True, capture_output=True)
    subprocess.run([LLD, "-shared", str(obj), "-o", str(co)], check=True)
    return co


@needs_clang
@pytest.mark.parametrize(("version", "layout"), [(4, V4_HIDDEN), (5, V5_HIDDEN)])
@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_every_hidden_argument(tmp_path, target, version, layout):
    path = build_cl(tmp_path, HIDDEN_KERNEL, target, version)
    co = load_code_object(path)
    _check_against(co, readobj_metadata(str(path)))
    kmd = co.kernels["every_hidden"].metadata
    hidden = {a.value_kind: a.offset for a in kmd.hidden_args}
    assert set(hidden) <= HIDDEN_VALUE_KINDS
    explicit_end = max(a.offset + a.size for a in kmd.explicit_args)
    base = -(-explicit_end // 8) * 8
    assert {k: v - base for k, v in hidden.items()} == layout
    local = kmd.explicit_args[2]
    assert (local.value_kind, local.address_space, local.size) == (
        "dynamic_shared_pointer", "local", 4)


# A kernel that calls printf: LLVM adds hidden_printf_buffer (the module has printf formats,
# amdhsa.printf), at 24 in the v4 block and 72 in the v5 block (AMDGPUUsage, facts §5.1).
PRINTF_KERNEL = """
__kernel void pk(__global uint *out, uint k) {
  printf("v=%u\\n", k);
  out[0] = k;
}
"""
# Casts of private and local pointers to generic ones on a target without aperture registers
# (GFX8): LLVM reads the aperture bases from hidden_private_base / hidden_shared_base, at 192
# and 196 of the v5 block (AMDGPUUsage "only used by GFX8").
APERTURE_KERNEL = """
__kernel void ak(__global ulong *out, uint k) {
  __local uint l[4];
  __private uint p[4];
  p[k & 3] = k;
  l[k & 3] = k;
  out[0] = (ulong)(__generic uint *)&p[k & 3];
  out[1] = (ulong)(__generic uint *)&l[k & 3];
}
"""


@needs_clang
@pytest.mark.parametrize(("source", "name", "target", "version", "kind", "offset"), [
    (PRINTF_KERNEL, "pk", "gfx942", 4, "hidden_printf_buffer", 24),
    (PRINTF_KERNEL, "pk", "gfx942", 5, "hidden_printf_buffer", 72),
    (APERTURE_KERNEL, "ak", "gfx803", 5, "hidden_private_base", 192),
    (APERTURE_KERNEL, "ak", "gfx803", 5, "hidden_shared_base", 196),
], ids=["printf-v4", "printf-v5", "private_base-v5", "shared_base-v5"])
def test_service_and_aperture_hidden_arguments(tmp_path, source, name, target, version, kind,
                                               offset):
    path = build_cl(tmp_path, source, target, version, name=name)
    co = load_code_object(path)
    _check_against(co, readobj_metadata(str(path)))
    kmd = co.kernels[name].metadata
    explicit_end = max(a.offset + a.size for a in kmd.explicit_args)
    base = -(-explicit_end // 8) * 8
    arg = kmd.hidden(kind)
    assert arg is not None and kind in HIDDEN_VALUE_KINDS
    assert arg.offset - base == offset
    if kind == "hidden_printf_buffer":
        assert co.metadata.printf, "a printf kernel lists its formats in amdhsa.printf"

