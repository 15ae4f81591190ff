"""The ELF facts codeobj reads, checked against llvm-readobj-19 on every shipped code object
and on code objects clang-19 builds here (v4, v5, v6)."""

from __future__ import annotations

import struct
import subprocess

import pytest

from pytest_amdgpu.codeobj import load_code_object
from pytest_amdgpu.codeobj.elf import (
    ELFOSABI_AMDGPU_HSA,
    EM_AMDGPU,
    MACH_NAMES,
    R_AMDGPU_NAMES,
    decode_e_flags,
    encode_e_flags,
)

from .oracle import CLANG, LLD, READOBJ, needs_clang, needs_readobj, prebuilt, prebuilt_ids, readobj

pytestmark = needs_readobj

# llvm-readobj flag names -> setting (ELF.h EF_AMDGPU_FEATURE_*_V4)
_SETTING = {"UNSUPPORTED": "unsupported", "ANY": "any", "OFF": "off", "ON": "on"}


def _readobj_settings(flags: list[dict]) -> dict[str, str]:
    out = {"xnack": "unsupported", "sramecc": "unsupported"}
    for f in flags:
        name = f["Name"]
        for feature in ("XNACK", "SRAMECC"):
            prefix = f"EF_AMDGPU_FEATURE_{feature}_"
            if name.startswith(prefix) and name.endswith("_V4"):
                out[feature.lower()] = _SETTING[name[len(prefix):-3]]
    return out


@pytest.mark.parametrize(("name", "target", "path"), prebuilt(), ids=prebuilt_ids())
def test_header_symbols_segments_relocations(name, target, path):
    oracle = readobj(str(path))
    co = load_code_object(path)
    hdr = oracle["ElfHeader"]
    assert hdr["Machine"]["Value"] == EM_AMDGPU
    assert hdr["Ident"]["OS/ABI"]["Value"] == ELFOSABI_AMDGPU_HSA
    assert co.elf.header.ei_abiversion == hdr["Ident"]["ABIVersion"] == 3   # code object v5
    assert co.code_object_version == 5
    assert co.e_flags == hdr["Flags"]["Value"]
    mach = [f["Name"] for f in hdr["Flags"]["Flags"] if f["Name"].startswith("EF_AMDGPU_MACH_")]
    assert mach == [f"EF_AMDGPU_MACH_AMDGCN_{co.processor.upper()}"]
    assert co.processor == target
    settings = _readobj_settings(hdr["Flags"]["Flags"])
    assert (co.target_id.xnack, co.target_id.sramecc) == (settings["xnack"], settings["sramecc"])

    loads = [p["ProgramHeader"] for p in oracle["ProgramHeaders"]
             if p["ProgramHeader"]["Type"]["Name"] == "PT_LOAD"]
    assert [(s.offset, s.vaddr, s.filesz, s.memsz, s.flags, s.align) for s in co.segments] == [
        (p["Offset"], p["VirtualAddress"], p["FileSize"], p["MemSize"], p["Flags"]["Value"],
         p["Alignment"]) for p in loads]

    symbols = {s["Symbol"]["Name"]["Name"]: s["Symbol"] for s in oracle["Symbols"]
               if s["Symbol"]["Name"]["Name"]}
    for sym_name, sym in co.symbols.items():
        assert sym.value == symbols[sym_name]["Value"], sym_name
        assert sym.size == symbols[sym_name]["Size"], sym_name
    kd = symbols[f"{name}.kd"]
    assert kd["Size"] == 64 and kd["Type"]["Name"] == "Object"
    assert co.kernels[name].kd_offset == kd["Value"]
    func = symbols[name]
    assert func["Type"]["Name"] == "Function"
    assert co.kernels[name].entry_offset == func["Value"]

    relocs = [r["Relocation"] for table in oracle.get("Relocations", []) for r in table["Relocs"]]
    assert [(r.offset, r.type_name, r.addend) for r in co.relocations] == [
        (r["Offset"], r["Type"]["Name"], r["Addend"]) for r in relocs]


def test_mach_table_matches_llvm_readelf(tmp_path):
    """Every EF_AMDGPU_MACH value 0..0x7f: our name == the name llvm-readelf-19 prints."""
    data = bytearray(prebuilt()[0][2].read_bytes())
    readelf = READOBJ.replace("llvm-readobj", "llvm-readelf")
    probe = tmp_path / "probe.co"
    for mach in range(0x80):
        struct.pack_into("<I", data, 48, mach)
        probe.write_bytes(data)
        out = subprocess.run([readelf, "-h", str(probe)], capture_output=True, text=True,
                             check=True).stdout
        flags = next(line for line in out.splitlines() if "Flags:" in line)
        parts = [p.strip() for p in flags.split(":", 1)[1].split(",")]
        llvm_name = parts[1] if len(parts) > 1 else None
        assert MACH_NAMES.get(mach) == llvm_name, f"mach {mach:#x}"


@pytest.mark.parametrize("flags", [0x54C, 0x74C, 0x34C, 0xF4C, 0x04C, 0x23F, 0xC3F, 0x041])
def test_e_flags_settings_match_readobj(flags, tmp_path):
    data = bytearray(prebuilt()[0][2].read_bytes())
    struct.pack_into("<I", data, 48, flags)
    probe = tmp_path / "probe.co"
    probe.write_bytes(data)
    oracle = readobj.__wrapped__(str(probe))
    settings = _readobj_settings(oracle["ElfHeader"]["Flags"]["Flags"])
    tid = decode_e_flags(flags, 5)
    assert (tid.xnack, tid.sramecc) == (settings["xnack"], settings["sramecc"])
    assert encode_e_flags(tid, 5) == flags


def test_relocation_names_are_llvms():
    # the numbers of ELFRelocs/AMDGPU.def, as llvm-readobj names them in the shipped object
    from pytest_amdgpu import kernels

    rel = load_code_object(kernels.path("relocated", "gfx942")).relocations
    assert {r.type for r in rel} == {13}
    assert R_AMDGPU_NAMES[13] == "R_AMDGPU_RELATIVE64"


KERNEL = """
__global int g[4] = {1, 2, 3, 4};
__global int *__global gp = &g[1];
__kernel void k(__global int *out, char c, double d) { out[0] = *gp + c + (int)d; }
"""


@needs_clang
@pytest.mark.parametrize("version", [4, 5, 6])
@pytest.mark.parametrize("target", ["gfx90a", "gfx942:xnack-", "gfx1100"])
def test_clang_code_object_versions(version, target, tmp_path):
    src = tmp_path / "k.cl"
    src.write_text(KERNEL)
    subprocess.run([CLANG, "-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa",
                    f"-mcpu={target}", "-O2", "-nogpulib", f"-mcode-object-version={version}",
                    "-c", str(src), "-o", str(tmp_path / "k.o")], check=True,
                   capture_output=True)
    subprocess.run([LLD, "-shared", str(tmp_path / "k.o"), "-o", str(tmp_path / "k.co")],
                   check=True)
    co = load_code_object(tmp_path / "k.co")
    oracle = readobj(str(tmp_path / "k.co"))
    assert co.code_object_version == version
    assert co.elf.header.ei_abiversion == oracle["ElfHeader"]["Ident"]["ABIVersion"]
    assert co.processor == target.split(":")[0]
    settings = _readobj_settings(oracle["ElfHeader"]["Flags"]["Flags"])
    assert co.target_id.xnack == settings["xnack"]
    if ":xnack-" in target:
        assert co.target_id.xnack == "off"
    assert list(co.kernels) == ["k"]
    relocs = [r["Relocation"] for t in oracle["Relocations"] for r in t["Relocs"]]
    assert [(r.offset, r.addend) for r in co.relocations] == [
        (r["Offset"], r["Addend"]) for r in relocs]
    assert co.relocations and all(r.type_name == "R_AMDGPU_RELATIVE64" for r in co.relocations)
