"""CodeObject.check_target: a code object for another processor, or built for an xnack/sramecc
mode the device does not run, is refused with a CodeObjectError that names both and the fix."""

from __future__ import annotations

import struct
import subprocess

import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import TargetId, load_code_object
from pytest_amdgpu.errors import CodeObjectError
from pytest_amdgpu.targets import TARGETS, get_target

from .oracle import CLANG, LLD, needs_clang, needs_readobj, readobj


def _with_flags(name: str, target: str, flags: int) -> bytes:
    data = bytearray(kernels.path(name, target).read_bytes())
    struct.pack_into("<I", data, 48, flags)
    return bytes(data)


@pytest.mark.parametrize("built", kernels.TARGETS)
@pytest.mark.parametrize("device", kernels.TARGETS)
def test_processor_must_match(built, device):
    co = kernels.load("copy", built)
    if built == device:
        co.check_target(get_target(device))
        co.check_target(device)
        return
    with pytest.raises(CodeObjectError) as info:
        co.check_target(get_target(device))
    text = str(info.value)
    assert built in text and device in text and f"-mcpu={device}" in text


def test_any_runs_in_both_modes():
    co = kernels.load("copy", "gfx942")
    assert (co.target_id.xnack, co.target_id.sramecc) == ("any", "any")
    for tid in ("gfx942:xnack+", "gfx942:xnack-", "gfx942:sramecc+:xnack-", "gfx942:sramecc-"):
        co.check_target(tid)
    co.check_target(get_target("gfx942"), xnack="on", sramecc="off")


@pytest.mark.parametrize(("flags", "device", "ok"), [
    (0x33F, "gfx90a:xnack+", True),      # XNACK on (0x300)
    (0x33F, "gfx90a:xnack-", False),
    (0x23F, "gfx90a:xnack-", True),      # XNACK off (0x200)
    (0x23F, "gfx90a:xnack+", False),
    (0x23F, "gfx90a", True),             # device mode unknown: accepted
    (0xC3F, "gfx90a:sramecc+", True),    # SRAMECC on (0xC00)
    (0xC3F, "gfx90a:sramecc-", False),
    (0x83F, "gfx90a:sramecc+", False),   # SRAMECC off (0x800)
])
def test_feature_modes(flags, device, ok):
    co = load_code_object(_with_flags("copy", "gfx90a", flags))
    if ok:
        co.check_target(device)
    else:
        with pytest.raises(CodeObjectError, match=r"xnack|sramecc") as info:
            co.check_target(device)
        assert "any" in str(info.value)


@pytest.mark.parametrize(("flags", "feature"), [(0x341, "xnack"), (0xC41, "sramecc"),
                                                (0x241, "xnack"), (0x841, "sramecc")])
def test_feature_on_a_processor_without_it(flags, feature):
    # gfx1100 has no xnack/sramecc mode: a code object demanding either setting is refused,
    # and the message names the setting and how to rebuild
    co = load_code_object(_with_flags("copy", "gfx1100", flags))
    want = "on" if flags >> (8 if feature == "xnack" else 10) & 3 == 3 else "off"
    assert getattr(co.target_id, feature) == want
    assert not getattr(TARGETS["gfx1100"], f"{feature}_supported")
    sign = "+" if want == "on" else "-"
    with pytest.raises(CodeObjectError, match=f"no {feature} mode") as info:
        co.check_target(get_target("gfx1100"))
    assert f"{feature}{sign}" in str(info.value) and "-mcpu=gfx1100" in str(info.value)


def test_target_id_strings():
    assert str(TargetId("gfx942", xnack="off", sramecc="on")) == "gfx942:sramecc+:xnack-"
    assert TargetId.parse("amdgcn-amd-amdhsa--gfx90a:xnack+") == TargetId("gfx90a", xnack="on")
    with pytest.raises(CodeObjectError, match="unknown feature"):
        TargetId.parse("gfx90a:wave64+")


def _clang(tmp_path, mcpu: str, version: int = 5):
    src = tmp_path / "k.cl"
    src.write_text("__kernel void k(__global int *p) { p[0] = 1; }")
    subprocess.run([CLANG, "-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa",
                    f"-mcpu={mcpu}", "-O2", "-nogpulib", f"-mcode-object-version={version}",
                    "-c", str(src), "-o", str(tmp_path / "k.o")], check=True,
                   capture_output=True)
    out = tmp_path / f"k-{mcpu.replace(':', '_')}.co"
    subprocess.run([LLD, "-shared", str(tmp_path / "k.o"), "-o", str(out)], check=True)
    return out


@needs_clang
@needs_readobj
def test_clang_xnack_builds(tmp_path):
    on = load_code_object(_clang(tmp_path, "gfx90a:xnack+"))
    off = load_code_object(_clang(tmp_path, "gfx90a:xnack-:sramecc+"))
    assert (on.target_id.xnack, off.target_id.xnack, off.target_id.sramecc) == ("on", "off", "on")
    names = [f["Name"] for f in readobj(on.name)["ElfHeader"]["Flags"]["Flags"]]
    assert "EF_AMDGPU_FEATURE_XNACK_ON_V4" in names
    on.check_target("gfx90a:xnack+")
    with pytest.raises(CodeObjectError, match="xnack-"):
        on.check_target("gfx90a:xnack-")
    with pytest.raises(CodeObjectError, match="sramecc"):
        off.check_target("gfx90a:sramecc-")


@needs_clang
def test_generic_code_object(tmp_path):
    co = load_code_object(_clang(tmp_path, "gfx11-generic", version=6))
    assert co.processor == "gfx11-generic" and co.code_object_version == 6
    assert co.target_id.generic_version >= 1
    co.check_target(get_target("gfx1100"))
    with pytest.raises(CodeObjectError, match="gfx942"):
        co.check_target(get_target("gfx942"))


def test_device_refuses_foreign_code_object():
    from pytest_amdgpu.runtime import open_device

    with open_device("sim", target="gfx942") as dev:
        with pytest.raises(CodeObjectError, match="gfx90a"):
            dev.load_kernel(kernels.path("copy", "gfx90a"), "copy")
        assert dev.live_objects() == []
