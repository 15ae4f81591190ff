"""The target table against LLVM 19, which knows each processor independently of us.

- ``elf_mach``: the EF_AMDGPU_MACH bits clang-19 writes into a code object's e_flags;
- ``architected_flat_scratch`` / ``private_segment_buffer``: llvm-mc-19 refuses the private
  segment buffer user SGPR on targets whose hardware sets up flat scratch itself;
- ``wave_sizes``: llvm-mc-19 accepts ``.amdhsa_wavefront_size32`` only where waves can be 32;
- ``xnack_supported`` / ``sramecc_supported``: clang-19 accepts the target ID feature only where
  the processor has it;
- ``gfx_target_version``: the KFD topology values of real nodes (facts-kfd.md §6.3 dumps).
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from pytest_amdgpu.targets import TARGETS, target_name_from_version

CLANG = shutil.which("clang-19")
LLVM_MC = shutil.which("llvm-mc-19")
needs_clang = pytest.mark.skipif(CLANG is None, reason="needs clang-19")
needs_mc = pytest.mark.skipif(LLVM_MC is None, reason="needs llvm-mc-19")

NAMES = sorted(TARGETS)
KERNEL = "kernel void k(global int *p) { p[0] = 1; }\n"
EF_AMDGPU_MACH = 0xFF            # AMDGPUUsage "ELF Header": e_flags [7:0]
E_FLAGS_OFFSET = 48              # Elf64_Ehdr.e_flags


def _clang(tmp_path, mcpu: str) -> subprocess.CompletedProcess:
    src = tmp_path / "k.cl"
    src.write_text(KERNEL)
    return subprocess.run([CLANG, "-x", "cl", "-target", "amdgcn-amd-amdhsa", f"-mcpu={mcpu}",
                           "-nogpulib", "-c", str(src), "-o", str(tmp_path / "k.o")],
                          capture_output=True, text=True)


def _assembles(tmp_path, name: str, directive: str) -> bool:
    """Whether llvm-mc-19 accepts a kernel descriptor with `directive` for target `name`."""
    # targets with a unified VGPR/AGPR file need the AGPR offset in the descriptor
    accum = " .amdhsa_accum_offset 4\n" if TARGETS[name].has_agprs else ""
    src = tmp_path / "k.s"
    src.write_text(
        f'.amdgcn_target "amdgcn-amd-amdhsa--{name}"\n.text\n.p2align 8\nk:\n s_endpgm\n'
        f".rodata\n.p2align 6\n.amdhsa_kernel k\n .amdhsa_next_free_vgpr 1\n"
        f" .amdhsa_next_free_sgpr 1\n {directive}\n{accum}.end_amdhsa_kernel\n")
    out = subprocess.run([LLVM_MC, "-triple", "amdgcn-amd-amdhsa", f"-mcpu={name}",
                          "-filetype=obj", str(src), "-o", str(tmp_path / "k.o")],
                         capture_output=True, text=True)
    return out.returncode == 0


@needs_clang
@pytest.mark.parametrize("name", NAMES)
def test_elf_mach_is_what_clang_writes(tmp_path, name):
    out = _clang(tmp_path, name)
    assert out.returncode == 0, out.stderr
    data = (tmp_path / "k.o").read_bytes()
    (e_flags,) = struct.unpack_from("<I", data, E_FLAGS_OFFSET)
    assert TARGETS[name].elf_mach == e_flags & EF_AMDGPU_MACH


@needs_mc
@pytest.mark.parametrize("name", NAMES)
def test_flat_scratch_model_is_llvms(tmp_path, name):
    t = TARGETS[name]
    takes_buffer = _assembles(tmp_path, name, ".amdhsa_user_sgpr_private_segment_buffer 1")
    assert t.architected_flat_scratch is not takes_buffer
    assert t.private_segment_buffer is takes_buffer


@needs_mc
@pytest.mark.parametrize("name", NAMES)
def test_wave32_exactly_where_llvm_allows_it(tmp_path, name):
    allowed = _assembles(tmp_path, name, ".amdhsa_wavefront_size32 1")
    assert (32 in TARGETS[name].wave_sizes) is allowed
    assert 64 in TARGETS[name].wave_sizes


@needs_clang
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("feature", ["xnack", "sramecc"])
def test_target_id_features_are_llvms(tmp_path, name, feature):
    accepted = _clang(tmp_path, f"{name}:{feature}+").returncode == 0
    assert getattr(TARGETS[name], f"{feature}_supported") is accepted


# gfx_target_version of real nodes: MI250X GCD, MI300X, RX 7900 XTX (facts-kfd.md §6.3)
KFD_VERSIONS = {"gfx90a": 90010, "gfx942": 90402, "gfx1100": 110000}


@pytest.mark.parametrize("name", NAMES)
def test_gfx_target_version_is_the_topology_value(name):
    assert TARGETS[name].gfx_target_version == KFD_VERSIONS[name]
    assert target_name_from_version(KFD_VERSIONS[name]) == name
