"""Hand-written assembly kernels for the shader-core tests (one source for every target)."""

from __future__ import annotations

from pathlib import Path

from .harness import CodeObject, assemble


def asm_kernel(name: str, body9: str, body11: str | None = None, *, vgprs: int = 8, sgprs: int = 16,
               kernarg: bool = True, wgid: tuple[int, int, int] = (1, 0, 0), tid: int = 0, lds: int = 0,
               private: int = 0, wave32: bool = True, agprs: int = 0, extra: str = "") -> str:
    """An .amdhsa kernel whose body differs per family (s[0:1] = kernarg pointer when kernarg);
    `extra` adds .amdhsa_* directives."""
    body11 = body9 if body11 is None else body11
    arch = max(4, (vgprs + 3) // 4 * 4)
    common9 = f"\n  .amdhsa_next_free_vgpr {arch + agprs}\n  .amdhsa_accum_offset {arch}"
    common = f"""
  .amdhsa_group_segment_fixed_size {lds}
  .amdhsa_private_segment_fixed_size {private}
  .amdhsa_kernarg_size {64 if kernarg else 0}
  .amdhsa_user_sgpr_kernarg_segment_ptr {int(kernarg)}
  .amdhsa_system_sgpr_workgroup_id_x {wgid[0]}
  .amdhsa_system_sgpr_workgroup_id_y {wgid[1]}
  .amdhsa_system_sgpr_workgroup_id_z {wgid[2]}
  .amdhsa_system_vgpr_workitem_id {tid}
  .amdhsa_next_free_sgpr {sgprs}{extra}"""
    return f"""
.amdhsa_code_object_version 5
.text
.globl {name}
.p2align 8
.type {name},@function
{name}:
.if .amdgcn.gfx_generation_number == 9
{body9}
.else
{body11}
.endif
.L{name}_end:
.size {name}, .L{name}_end-{name}
.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel {name}{common}{common9}
.end_amdhsa_kernel
.else
.amdhsa_kernel {name}{common}
  .amdhsa_next_free_vgpr {vgprs}
  .amdhsa_wavefront_size32 {int(wave32)}
.end_amdhsa_kernel
.endif
"""


def build(text: str, target: str, tmp: Path, name: str) -> CodeObject:
    return CodeObject(assemble(text, target, tmp, name))
