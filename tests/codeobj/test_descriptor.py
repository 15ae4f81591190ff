"""Kernel descriptor decoding, checked against (1) llvm-objdump-19's disassembly of the same
64 bytes back into `.amdhsa_*` directives and (2) the `.amdhsa_*` directives our assembly
sources ask for through `KERNEL_END` of src/amdhsa.inc (and a probe assembled here with every
field set)."""

from __future__ import annotations

import math
import re
import subprocess

import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import KernelDescriptor, load_code_object
from pytest_amdgpu.codeobj.descriptor import KD_SIZE
from pytest_amdgpu.targets import get_target

from .oracle import (
    LLD,
    LLVM_MC,
    needs_clang,
    needs_objdump,
    objdump_descriptor,
    prebuilt,
    prebuilt_ids,
)


def _prop(name):
    return lambda kd: int(kd.has(name))


def _r(reg, name):
    return lambda kd: getattr(kd, reg)[name]


# `.amdhsa_<directive>` -> the value our decoding gives for it (AMDGPUUsage "AMDHSA Kernel
# Assembler Directives"); granulated counts are compared separately.
DIRECTIVE_FIELDS = {
    "group_segment_fixed_size": lambda kd: kd.group_segment_fixed_size,
    "private_segment_fixed_size": lambda kd: kd.private_segment_fixed_size,
    "kernarg_size": lambda kd: kd.kernarg_size,
    "user_sgpr_count": lambda kd: kd.user_sgpr_count,
    "user_sgpr_private_segment_buffer": _prop("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER"),
    "user_sgpr_dispatch_ptr": _prop("ENABLE_SGPR_DISPATCH_PTR"),
    "user_sgpr_queue_ptr": _prop("ENABLE_SGPR_QUEUE_PTR"),
    "user_sgpr_kernarg_segment_ptr": _prop("ENABLE_SGPR_KERNARG_SEGMENT_PTR"),
    "user_sgpr_dispatch_id": _prop("ENABLE_SGPR_DISPATCH_ID"),
    "user_sgpr_flat_scratch_init": _prop("ENABLE_SGPR_FLAT_SCRATCH_INIT"),
    "user_sgpr_private_segment_size": _prop("ENABLE_SGPR_PRIVATE_SEGMENT_SIZE"),
    "wavefront_size32": _prop("ENABLE_WAVEFRONT_SIZE32"),
    "uses_dynamic_stack": _prop("USES_DYNAMIC_STACK"),
    "enable_private_segment": _r("rsrc2", "ENABLE_PRIVATE_SEGMENT"),
    "system_sgpr_private_segment_wavefront_offset": _r("rsrc2", "ENABLE_PRIVATE_SEGMENT"),
    "system_sgpr_workgroup_id_x": _r("rsrc2", "ENABLE_SGPR_WORKGROUP_ID_X"),
    "system_sgpr_workgroup_id_y": _r("rsrc2", "ENABLE_SGPR_WORKGROUP_ID_Y"),
    "system_sgpr_workgroup_id_z": _r("rsrc2", "ENABLE_SGPR_WORKGROUP_ID_Z"),
    "system_sgpr_workgroup_info": _r("rsrc2", "ENABLE_SGPR_WORKGROUP_INFO"),
    "system_vgpr_workitem_id": _r("rsrc2", "ENABLE_VGPR_WORKITEM_ID"),
    "exception_fp_ieee_invalid_op": _r("rsrc2", "ENABLE_EXCEPTION_IEEE_754_FP_INVALID_OPERATION"),
    "exception_fp_denorm_src": _r("rsrc2", "ENABLE_EXCEPTION_FP_DENORMAL_SOURCE"),
    "exception_fp_ieee_div_zero": _r("rsrc2", "ENABLE_EXCEPTION_IEEE_754_FP_DIVISION_BY_ZERO"),
    "exception_fp_ieee_overflow": _r("rsrc2", "ENABLE_EXCEPTION_IEEE_754_FP_OVERFLOW"),
    "exception_fp_ieee_underflow": _r("rsrc2", "ENABLE_EXCEPTION_IEEE_754_FP_UNDERFLOW"),
    "exception_fp_ieee_inexact": _r("rsrc2", "ENABLE_EXCEPTION_IEEE_754_FP_INEXACT"),
    "exception_int_div_zero": _r("rsrc2", "ENABLE_EXCEPTION_INT_DIVIDE_BY_ZERO"),
    "float_round_mode_32": _r("rsrc1", "FLOAT_ROUND_MODE_32"),
    "float_round_mode_16_64": _r("rsrc1", "FLOAT_ROUND_MODE_16_64"),
    "float_denorm_mode_32": _r("rsrc1", "FLOAT_DENORM_MODE_32"),
    "float_denorm_mode_16_64": _r("rsrc1", "FLOAT_DENORM_MODE_16_64"),
    "dx10_clamp": _r("rsrc1", "ENABLE_DX10_CLAMP"),
    "ieee_mode": _r("rsrc1", "ENABLE_IEEE_MODE"),
    "fp16_overflow": _r("rsrc1", "FP16_OVFL"),
    "workgroup_processor_mode": _r("rsrc1", "WGP_MODE"),
    "memory_ordered": _r("rsrc1", "MEM_ORDERED"),
    "forward_progress": _r("rsrc1", "FWD_PROGRESS"),
    "tg_split": _r("rsrc3", "TG_SPLIT"),
    "shared_vgpr_count": _r("rsrc3", "SHARED_VGPR_COUNT"),
    "inst_pref_size": _r("rsrc3", "INST_PREF_SIZE"),
    "accum_offset": lambda kd: kd.accum_offset,
}
NOT_IN_DESCRIPTOR = {"reserve_vcc", "reserve_flat_scratch", "reserve_xnack_mask",
                     "next_free_sgpr", "next_free_vgpr"}


def _kd(name: str, target: str) -> KernelDescriptor:
    return load_code_object(kernels.path(name, target)).kernels[name].descriptor


def _objdump_comments(path, kernel: str) -> dict[str, int]:
    from .oracle import OBJDUMP

    text = subprocess.run([OBJDUMP, "-D", "-j", ".rodata", str(path)], capture_output=True,
                          text=True).stdout
    block = text.split(f"<{kernel}.kd>:", 1)[-1].split(".end_amdhsa_kernel", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r";\s*(\w+) (\d+)", block)}


@needs_objdump
@pytest.mark.parametrize(("name", "target", "path"), prebuilt(), ids=prebuilt_ids())
def test_descriptor_matches_objdump(name, target, path):
    oracle = objdump_descriptor(str(path), name)
    kd = load_code_object(path).kernels[name].descriptor
    if isinstance(oracle, str):
        # LLVM 19's disassembler refuses clang's own gfx11 descriptors because clang sets the
        # GRANULATED_WAVEFRONT_SGPR_COUNT bits that are reserved on gfx10+; check that is why.
        assert target == "gfx1100" and "GRANULATED_WAVEFRONT_SGPR_COUNT" in oracle, oracle
        assert kd.rsrc1["GRANULATED_WAVEFRONT_SGPR_COUNT"] != 0
        # the other LLVM view of the same kernel: its metadata entry
        md = load_code_object(path).kernels[name].metadata
        assert kd.wavefront_size == md.wavefront_size
        assert kd.kernarg_size == md.kernarg_segment_size
        assert kd.group_segment_fixed_size == md.group_segment_fixed_size
        assert kd.private_segment_fixed_size == md.private_segment_fixed_size
        assert kd.rsrc1["GRANULATED_WORKITEM_VGPR_COUNT"] == \
            max(math.ceil(md.vgpr_count / kd.vgpr_granule()), 1) - 1
        return
    for directive, value in oracle.items():
        if directive in NOT_IN_DESCRIPTOR:
            continue
        assert DIRECTIVE_FIELDS[directive](kd) == value, directive
    granule = kd.vgpr_granule()
    assert kd.vgprs_allocated == oracle["next_free_vgpr"] == \
        (kd.rsrc1["GRANULATED_WORKITEM_VGPR_COUNT"] + 1) * granule
    # llvm-objdump prints (GRANULATED_WAVEFRONT_SGPR_COUNT + 1) * 8
    assert kd.rsrc1["GRANULATED_WAVEFRONT_SGPR_COUNT"] == oracle["next_free_sgpr"] // 8 - 1
    for field, value in _objdump_comments(path, name).items():
        assert kd.rsrc3[field] == value, field


# -- the directives of our own assembly sources ---------------------------------------------

_GEN = {"gfx90a": (9, 0, 10), "gfx942": (9, 4, 2), "gfx1100": (11, 0, 0)}


def expand_kernel_end(source: str) -> str:
    """`source` with its `KERNEL_END name, key=value, ...` line replaced by the body of that
    macro in src/amdhsa.inc, parameters substituted as the assembler does (defaults from the
    `.macro` line, backslash-parenthesis joins)."""
    inc = (kernels.SRC_DIR / "amdhsa.inc").read_text()
    macro = re.search(r"^\.macro KERNEL_END (.*?)\n(.*?)^\.endm", inc, re.S | re.M)
    assert macro, "amdhsa.inc defines no KERNEL_END macro"
    order, values = [], {}
    for param in macro.group(1).split(","):
        key, _, default = param.strip().partition("=")
        order.append(key)
        values[key] = default
    call = re.search(r"^KERNEL_END (.*)$", source, re.M)
    assert call, "the source has no KERNEL_END line"
    for i, arg in enumerate(a.strip() for a in call.group(1).split(",")):
        key, eq, value = arg.partition("=")
        if eq:
            values[key.strip()] = value.strip()
        else:
            values[order[i]] = arg
    body = macro.group(2)
    for key in sorted(values, key=len, reverse=True):
        body = body.replace("\\" + key, values[key])
    return source.replace(call.group(0), body.replace("\\()", ""))


def _integer(text: str) -> int:
    """An assembler absolute expression of integers, + - * / and parentheses (/ truncates)."""
    assert re.fullmatch(r"[\dxXa-fA-F\s+\-*/()]+", text), text
    return int(eval(re.sub(r"(?<![/])/(?!/)", "//", text)))


def directives_for(source: str, target: str) -> dict[str, int]:
    """The `.amdhsa_*` directives of the `.amdhsa_kernel` block that assembles for `target`,
    evaluating `.if/.elseif/.else/.endif` on the `.amdgcn.gfx_generation_*` symbols."""
    source = expand_kernel_end(source) if re.search(r"^KERNEL_END ", source, re.M) else source
    number, minor, stepping = _GEN[target]
    symbols = {".amdgcn.gfx_generation_number": number, ".amdgcn.gfx_generation_minor": minor,
               ".amdgcn.gfx_generation_stepping": stepping}

    def evaluate(expr: str) -> bool:
        for sym, val in symbols.items():
            expr = expr.replace(sym, str(val))
        assert re.fullmatch(r"[\d\s=!<>&|()]+", expr), expr
        return bool(eval(expr.replace("&&", " and ").replace("||", " or ")))

    stack: list[tuple[bool, bool]] = []       # (active, some branch taken)
    active, found, inside = True, {}, False
    for raw in source.splitlines():
        line = raw.split("//")[0].strip()
        if line.startswith(".if "):
            cond = evaluate(line[4:])
            stack.append((active, cond))
            active = active and cond
        elif line.startswith(".elseif "):
            parent, taken = stack[-1]
            cond = not taken and evaluate(line[8:])
            stack[-1] = (parent, taken or cond)
            active = parent and cond
        elif line == ".else":
            parent, taken = stack[-1]
            active = parent and not taken
            stack[-1] = (parent, True)
        elif line == ".endif":
            active = stack.pop()[0]
        elif not active:
            continue
        elif line.startswith(".amdhsa_kernel "):
            inside = True
        elif line == ".end_amdhsa_kernel":
            inside = False
        elif inside and line.startswith(".amdhsa_"):
            key, value = line.split(None, 1)
            found[key[len(".amdhsa_"):]] = _integer(value)
    return found


ASM = [(n, t) for n in kernels.names() if kernels.source(n).suffix == ".s"
       for t in kernels.TARGETS]


@pytest.mark.parametrize(("name", "target"), ASM, ids=[f"{t}-{n}" for n, t in ASM])
def test_descriptor_matches_source_directives(name, target):
    wanted = directives_for(kernels.source(name).read_text(), target)
    assert "next_free_vgpr" in wanted
    kd = _kd(name, target)
    for directive, value in wanted.items():
        if directive in NOT_IN_DESCRIPTOR:
            continue
        assert DIRECTIVE_FIELDS[directive](kd) == value, directive
    granule = kd.vgpr_granule()
    assert kd.rsrc1["GRANULATED_WORKITEM_VGPR_COUNT"] == \
        max(math.ceil(wanted["next_free_vgpr"] / granule), 1) - 1
    assert kd.wavefront_size == get_target(target).wave_size


# -- a probe with every field set -----------------------------------------------------------

PROBE = {
    "gfx90a": {"group_segment_fixed_size": 1536, "private_segment_fixed_size": 96,
               "kernarg_size": 72, "user_sgpr_private_segment_buffer": 1,
               "user_sgpr_dispatch_ptr": 1, "user_sgpr_queue_ptr": 1,
               "user_sgpr_kernarg_segment_ptr": 1, "user_sgpr_dispatch_id": 1,
               "user_sgpr_flat_scratch_init": 1, "user_sgpr_private_segment_size": 1,
               "system_sgpr_private_segment_wavefront_offset": 1,
               "accum_offset": 32, "tg_split": 1, "next_free_vgpr": 64},
    "gfx942": {"group_segment_fixed_size": 2048, "private_segment_fixed_size": 16,
               "kernarg_size": 24, "user_sgpr_dispatch_ptr": 1, "user_sgpr_queue_ptr": 1,
               "user_sgpr_kernarg_segment_ptr": 1, "user_sgpr_dispatch_id": 1,
               "user_sgpr_private_segment_size": 1, "enable_private_segment": 1,
               "accum_offset": 12, "tg_split": 0, "next_free_vgpr": 24},
    "gfx1100": {"group_segment_fixed_size": 4096, "private_segment_fixed_size": 48,
                "kernarg_size": 264, "user_sgpr_dispatch_ptr": 1, "user_sgpr_queue_ptr": 1,
                "user_sgpr_kernarg_segment_ptr": 1, "user_sgpr_dispatch_id": 1,
                "user_sgpr_private_segment_size": 1, "enable_private_segment": 1,
                "wavefront_size32": 1, "workgroup_processor_mode": 0, "memory_ordered": 1,
                "forward_progress": 1, "shared_vgpr_count": 0,
                "next_free_vgpr": 40},
}
COMMON = {"system_sgpr_workgroup_id_x": 1, "system_sgpr_workgroup_id_y": 1,
          "system_sgpr_workgroup_id_z": 1, "system_sgpr_workgroup_info": 1,
          "system_vgpr_workitem_id": 2, "next_free_sgpr": 40, "float_round_mode_32": 1,
          "float_round_mode_16_64": 2, "float_denorm_mode_32": 2,
          "float_denorm_mode_16_64": 1, "dx10_clamp": 0, "ieee_mode": 0, "fp16_overflow": 1,
          "exception_fp_ieee_invalid_op": 1, "exception_fp_denorm_src": 0,
          "exception_fp_ieee_div_zero": 1, "exception_fp_ieee_overflow": 0,
          "exception_fp_ieee_underflow": 1, "exception_fp_ieee_inexact": 0,
          "exception_int_div_zero": 1}


@needs_clang
@needs_objdump
@pytest.mark.parametrize("target", sorted(PROBE))
def test_probe_with_every_field(target, tmp_path):
    directives = {**COMMON, **PROBE[target]}
    body = "\n".join(f"  .amdhsa_{k} {v}" for k, v in directives.items())
    src = tmp_path / "probe.s"
    src.write_text(f""".amdhsa_code_object_version 5
.text
.globl probe
.p2align 8
.type probe,@function
probe:
  s_endpgm
.rodata
.p2align 6
.amdhsa_kernel probe
{body}
.end_amdhsa_kernel
""")
    subprocess.run([LLVM_MC, "-triple=amdgcn-amd-amdhsa", f"-mcpu={target}",
                    "-filetype=obj", str(src), "-o", str(tmp_path / "probe.o")], check=True)
    subprocess.run([LLD, "-shared", str(tmp_path / "probe.o"), "-o",
                    str(tmp_path / "probe.co")], check=True)
    co = load_code_object(tmp_path / "probe.co")     # no metadata note: found by its .kd symbol
    assert co.metadata is None and list(co.kernels) == ["probe"]
    kd = co.kernels["probe"].descriptor
    for directive, value in directives.items():
        if directive not in NOT_IN_DESCRIPTOR:
            assert DIRECTIVE_FIELDS[directive](kd) == value, directive
    oracle = objdump_descriptor(str(tmp_path / "probe.co"), "probe")
    for directive, value in oracle.items():
        if directive not in NOT_IN_DESCRIPTOR:
            assert DIRECTIVE_FIELDS[directive](kd) == value, directive
    names = [u.name for u in kd.user_sgprs()]
    enabled = [d[len("user_sgpr_"):] for d in directives
               if d.startswith("user_sgpr_") and directives[d]]
    order = ["private_segment_buffer", "dispatch_ptr", "queue_ptr", "kernarg_segment_ptr",
             "dispatch_id", "flat_scratch_init", "private_segment_size"]
    assert names == [n for n in order if n in enabled]
    assert kd.user_sgpr_count == kd.enabled_user_sgpr_total == sum(
        {"private_segment_buffer": 4, "private_segment_size": 1}.get(n, 2) for n in names)
    assert KernelDescriptor.from_bytes(kd.to_bytes(), target) == kd


# -- layout facts -----------------------------------------------------------------------------

def test_user_sgpr_examples_from_the_abi():
    """facts-sdma-aql-codeobj.md §4.4: props 0x000B on gfx90a -> s[0:3] V#, s[4:5] dispatch
    ptr, s[6:7] kernarg ptr (8 SGPRs); props 0x000A on gfx942 -> s[0:1], s[2:3] (4 SGPRs)."""
    kd = KernelDescriptor(kernel_code_properties=0x000B, compute_pgm_rsrc2=8 << 1,
                          processor="gfx90a")
    assert [(u.name, u.first, u.count) for u in kd.user_sgprs()] == [
        ("private_segment_buffer", 0, 4), ("dispatch_ptr", 4, 2),
        ("kernarg_segment_ptr", 6, 2)]
    kd = KernelDescriptor(kernel_code_properties=0x000A, compute_pgm_rsrc2=4 << 1,
                          processor="gfx942")
    assert [(u.name, u.first, u.count) for u in kd.user_sgprs()] == [
        ("dispatch_ptr", 0, 2), ("kernarg_segment_ptr", 2, 2)]


def test_descriptor_byte_layout():
    """Field offsets of the 64-byte descriptor (AMDGPUUsage "Kernel Descriptor")."""
    raw = bytearray(KD_SIZE)
    raw[0:4] = (0x11).to_bytes(4, "little")          # group_segment_fixed_size
    raw[4:8] = (0x22).to_bytes(4, "little")          # private_segment_fixed_size
    raw[8:12] = (0x33).to_bytes(4, "little")         # kernarg_size
    raw[16:24] = (-0x1C0).to_bytes(8, "little", signed=True)   # entry byte offset (signed)
    raw[44:48] = (0x44).to_bytes(4, "little")        # compute_pgm_rsrc3
    raw[48:52] = (0x55).to_bytes(4, "little")        # compute_pgm_rsrc1
    raw[52:56] = (0x66).to_bytes(4, "little")        # compute_pgm_rsrc2
    raw[56:58] = (0x0409).to_bytes(2, "little")      # kernel_code_properties
    raw[58:60] = ((3 << 7) | 5).to_bytes(2, "little")  # kernarg_preload offset 3, length 5
    kd = KernelDescriptor.from_bytes(bytes(raw), "gfx90a")
    assert (kd.group_segment_fixed_size, kd.private_segment_fixed_size, kd.kernarg_size) == (
        0x11, 0x22, 0x33)
    assert kd.kernel_code_entry_byte_offset == -0x1C0
    assert (kd.compute_pgm_rsrc3, kd.compute_pgm_rsrc1, kd.compute_pgm_rsrc2) == (
        0x44, 0x55, 0x66)
    assert kd.has("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER") and kd.has("ENABLE_SGPR_KERNARG_SEGMENT_PTR")
    assert (kd.kernarg_preload_length, kd.kernarg_preload_offset) == (5, 3)
    assert [u.name for u in kd.user_sgprs()] == [
        "private_segment_buffer", "kernarg_segment_ptr", "kernarg_preload"]
    assert kd.to_bytes() == bytes(raw)
