"""A minimal code-object loader and launcher for shader-core tests.

Compiles OpenCL C with clang-19, links with ld.lld-19, loads the code object into a VM (the
test double or the driver's GPUVM), fills the kernarg segment from the msgpack metadata
(explicit and hidden arguments of code object v5) and builds DispatchRegs from the 64-byte
kernel descriptor exactly as the CP firmware does for an AQL dispatch (user SGPRs in the
AMDGPUUsage order, the private segment buffer V# on gfx90a, architected flat scratch on
gfx942/gfx1100).  Part G builds the real loader; this one only serves the tests.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np
from elftools.elf.elffile import ELFFile

from pytest_amdgpu.sim.shader import DispatchRegs, ShaderCore
from pytest_amdgpu.targets.table import get_target

CLANG = "clang-19"
LLD = "ld.lld-19"
LLVM_MC = "llvm-mc-19"
KERNELS = Path(__file__).parent / "kernels"


def have_llvm() -> bool:
    return all(shutil.which(x) for x in (CLANG, LLD, LLVM_MC))


def compile_cl(src: Path, target: str, out_dir: Path, extra: tuple[str, ...] = ()) -> Path:
    obj = out_dir / f"{src.stem}_{target}.o"
    co = out_dir / f"{src.stem}_{target}.co"
    subprocess.run([CLANG, "-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa", f"-mcpu={target}",
                    "-O2", "-nogpulib", *extra, "-c", str(src), "-o", str(obj)], check=True)
    subprocess.run([LLD, "-shared", str(obj), "-o", str(co)], check=True)
    return co


def assemble(text: str, target: str, out_dir: Path, name: str) -> Path:
    s = out_dir / f"{name}_{target}.s"
    s.write_text(text)
    obj = out_dir / f"{name}_{target}.o"
    co = out_dir / f"{name}_{target}.co"
    subprocess.run([LLVM_MC, "-triple=amdgcn-amd-amdhsa", f"-mcpu={target}", "-filetype=obj", str(s), "-o", str(obj)],
                   check=True)
    subprocess.run([LLD, "-shared", str(obj), "-o", str(co)], check=True)
    return co


@dataclass
class KernelInfo:
    name: str
    kd_offset: int                 # offset of <name>.kd in the image
    args: list[dict]
    kernarg_size: int
    group_segment: int
    private_segment: int
    wavefront_size: int
    meta: dict = field(default_factory=dict)


class CodeObject:
    """An HSA code object: its load image and kernels (from the ELF and the metadata note)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        data = self.path.read_bytes()
        self.data = data
        with open(self.path, "rb") as fh:
            elf = ELFFile(fh)
            segs = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            self.image_size = max(s["p_vaddr"] + s["p_memsz"] for s in segs)
            self.image = bytearray(self.image_size)
            for s in segs:
                self.image[s["p_vaddr"]:s["p_vaddr"] + s["p_filesz"]] = s.data()
            syms = {}
            for sec in elf.iter_sections():
                if sec.header["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM"):
                    for sym in sec.iter_symbols():
                        syms[sym.name] = sym["st_value"]
            meta = None
            for sec in elf.iter_sections():
                if sec.header["sh_type"] == "SHT_NOTE":
                    for n in sec.iter_notes():
                        if n["n_type"] == 32 and n["n_name"] == "AMDGPU":
                            desc = n["n_descdata"]
                            meta = msgpack.unpackb(desc if isinstance(desc, bytes) else desc.encode("latin1"))
            text = elf.get_section_by_name(".text")
            self.text = (text["sh_addr"], text.data())
        self.kernels: dict[str, KernelInfo] = {}
        if meta is None:      # hand-written assembly without a metadata note: kernels from <name>.kd
            meta = {"amdhsa.kernels": [
                {".name": n[:-3], ".symbol": n, ".kernarg_segment_size": 0, ".group_segment_fixed_size": 0,
                 ".private_segment_fixed_size": 0, ".wavefront_size": 64} for n in syms if n.endswith(".kd")]}
        for k in meta["amdhsa.kernels"]:
            self.kernels[k[".name"]] = KernelInfo(
                name=k[".name"], kd_offset=syms[k[".symbol"]], args=k.get(".args", []),
                kernarg_size=k[".kernarg_segment_size"], group_segment=k[".group_segment_fixed_size"],
                private_segment=k[".private_segment_fixed_size"], wavefront_size=k[".wavefront_size"], meta=k)


@dataclass
class Loaded:
    co: CodeObject
    base: int


def load(vm, co: CodeObject) -> Loaded:
    region = vm.map(co.image_size + 256, executable=True, writable=True, align=0x1000)
    region.array[:co.image_size] = np.frombuffer(bytes(co.image), dtype=np.uint8)
    return Loaded(co, region.start)


class Launch:
    """Everything one dispatch needs: DispatchRegs plus the buffers it points at."""

    def __init__(self, regs: DispatchRegs, kernarg: int, scratch: int) -> None:
        self.regs = regs
        self.kernarg = kernarg
        self.scratch = scratch


def build_dispatch(vm, loaded: Loaded, name: str, grid, block, args, target: str, *, dynamic_lds: int = 0,
                   scratch_waves: int | None = None) -> Launch:
    """Kernarg segment, AQL packet and DispatchRegs for `name` over `grid` work-items."""
    t = get_target(target)
    k = loaded.co.kernels[name]
    kd_addr = loaded.base + k.kd_offset
    kd = bytes(vm.read(kd_addr, 64))
    group_fixed, priv_fixed, kernarg_size = struct.unpack_from("<III", kd, 0)
    entry = struct.unpack_from("<q", kd, 16)[0]
    rsrc3, rsrc1, rsrc2 = struct.unpack_from("<III", kd, 44)
    props = struct.unpack_from("<H", kd, 56)[0]
    grid = tuple(grid) + (1,) * (3 - len(grid))
    block = tuple(block) + (1,) * (3 - len(block))
    wave32 = bool(props >> 10 & 1)
    L = 32 if wave32 else 64
    # kernarg segment: explicit arguments by metadata offset, then hidden arguments (COV5)
    ka = bytearray(max(kernarg_size, k.kernarg_size, 256))
    explicit = [a for a in k.args if not a[".value_kind"].startswith("hidden_")]
    if not k.args and args:           # assembly without metadata: 8-byte slots in order
        explicit = [{".offset": 8 * i, ".size": 8, ".value_kind": "by_value"} for i in range(len(args))]
    if len(explicit) != len(args):
        raise ValueError(f"{name}: {len(explicit)} explicit arguments, {len(args)} given")
    for a, v in zip(explicit, args):
        off, size = a[".offset"], a[".size"]
        if a[".value_kind"] == "dynamic_shared_pointer":
            continue
        if isinstance(v, (bytes, bytearray)):
            raw = bytes(v)[:size].ljust(size, b"\0")
        elif isinstance(v, (float, np.floating)):
            raw = struct.pack("<f" if size == 4 else "<d", float(v))
        else:
            raw = (int(v) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        ka[off:off + size] = raw
    hidden = {}
    for d in range(3):
        hidden[f"hidden_block_count_{'xyz'[d]}"] = grid[d] // block[d]
        hidden[f"hidden_group_size_{'xyz'[d]}"] = block[d]
        hidden[f"hidden_remainder_{'xyz'[d]}"] = grid[d] % block[d]
        hidden[f"hidden_global_offset_{'xyz'[d]}"] = 0
    hidden["hidden_grid_dims"] = 3 if grid[2] > 1 else 2 if grid[1] > 1 else 1
    hidden["hidden_dynamic_lds_size"] = dynamic_lds
    for a in k.args:
        kind = a[".value_kind"]
        if kind in hidden:
            off, size = a[".offset"], a[".size"]
            ka[off:off + size] = int(hidden[kind]).to_bytes(size, "little")
    kernarg = vm.alloc(bytes(ka), writable=False)
    # AQL kernel dispatch packet (for the dispatch pointer)
    pkt = struct.pack("<HHHHHHIIIIIQQQQ", 2, 3, block[0], block[1], block[2], 0, grid[0], grid[1], grid[2],
                      priv_fixed, group_fixed + dynamic_lds, kd_addr, kernarg, 0, 0)
    pkt_addr = vm.alloc(pkt, writable=False)
    # scratch
    per_lane = (priv_fixed + 3) & ~3
    unit = t.tmpring_wavesize_unit
    wave_bytes = -(-per_lane * L // unit) * unit if per_lane else 0
    waves = scratch_waves if scratch_waves is not None else 256
    scratch = 0
    if rsrc2 & 1 and wave_bytes:
        scratch = vm.map(wave_bytes * waves, align=0x10000).start
    user = []
    if props & 1:                         # private segment buffer V# (gfx90a)
        w1 = ((scratch >> 32) & 0xFFFF) | (1 << 31)             # swizzle enable, stride 0
        w3 = (4 << 0) | (5 << 3) | (6 << 6) | (7 << 9) | (4 << 12) | (4 << 15) | (3 << 21) | (1 << 23)
        user += [scratch & 0xFFFFFFFF, w1, wave_bytes * waves, w3]
    if props & 2:
        user += [pkt_addr & 0xFFFFFFFF, pkt_addr >> 32]
    if props & 4:
        user += [0, 0]
    if props & 8:
        user += [kernarg & 0xFFFFFFFF, kernarg >> 32]
    if props & 16:
        user += [7, 0]
    if props & 32:
        user += [scratch & 0xFFFFFFFF, scratch >> 32]
    if props & 64:
        user += [per_lane]
    user += [0] * (16 - len(user))
    regs = DispatchRegs(
        pgm_addr=kd_addr + entry, rsrc1=rsrc1, rsrc2=rsrc2, rsrc3=rsrc3, user_data=user[:16], grid=grid,
        workgroup=block, wave32=wave32, scratch_base=scratch, scratch_wave_bytes=wave_bytes,
        scratch_waves=waves if scratch else 0, private_segment_size=priv_fixed,
        lds_bytes=group_fixed + dynamic_lds, dispatch_id=7, dispatch_ptr=pkt_addr, kernarg_ptr=kernarg,
        kernel_code_properties=props, source=f"test dispatch of {name}")
    return Launch(regs, kernarg, scratch)


def run(vm, loaded: Loaded, name: str, grid, block, args, target: str, *, core: ShaderCore | None = None,
        cancel: threading.Event | None = None, **kw):
    launch = build_dispatch(vm, loaded, name, grid, block, args, target, **kw)
    core = core or ShaderCore(target)
    core.run(vm, launch.regs, cancel=cancel or threading.Event(), clock=lambda: 12345)
    return core


class Device:
    """A test VM with one code object loaded: buffers in, dispatch, buffers out."""

    def __init__(self, target: str, co: CodeObject, vm=None) -> None:
        from .fakevm import FakeVM
        self.target = target
        self.vm = vm if vm is not None else FakeVM()
        self.loaded = load(self.vm, co)
        self.core = ShaderCore(target)

    def buf(self, data=None, *, nbytes: int = 0, writable: bool = True) -> int:
        if data is None:
            data = np.zeros(nbytes, dtype=np.uint8)
        return self.vm.alloc(np.ascontiguousarray(data), writable=writable)

    def read(self, addr: int, dtype, count: int) -> np.ndarray:
        return np.frombuffer(self.vm.read(addr, np.dtype(dtype).itemsize * count), dtype=dtype).copy()

    def launch(self, name: str, grid, block, *args, cancel=None, **kw):
        return run(self.vm, self.loaded, name, grid, block, list(args), self.target, core=self.core,
                   cancel=cancel, **kw)
