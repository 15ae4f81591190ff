"""SimMachine: the simulated host — a CPU node, GPUs from a spec string, the sysfs topology.

`SimMachine("gfx942x2,gfx1100")` builds node 0 (the CPU) and one GPU node per device, in spec
order, each with its render node (renderD128 + n), a stable gpu_id, VRAM and an engine. Several
machines, and several processes (SimPorts) per machine, coexist in one Python process.
The sysfs tree is what amdkfd's kfd_topology.c shows (facts-kfd.md §6), served by SimPort.
"""

from __future__ import annotations

import errno as E
import logging
import os
import threading
from collections.abc import Callable

from ..kfd.port import TOPOLOGY_PATH
from ..targets import TARGETS
from . import presets as P
from .device import SimDevice
from .memory import DriverError

log = logging.getLogger("pytest_amdgpu.sim")

__all__ = ["SimMachine", "parse_spec", "kfd_gpu_id"]

SYSFS_ALIASES = ("/sys/class/kfd/kfd/topology",)
GOLDEN_RATIO_32 = 0x61C88647        # include/linux/hash.h
KFD_GPU_ID_HASH_WIDTH = 16          # kfd_priv.h
MAX_GPUS = 64
RESERVE_MEM_LIMIT = 3 << 29         # amdgpu_amdkfd_gpuvm.c AMDGPU_RESERVE_MEM_LIMIT (1.5 GiB)


def parse_spec(spec: str) -> list[str]:
    """`"gfx942x2,gfx1100"` -> ["gfx942", "gfx942", "gfx1100"]; ValueError names the bad part."""
    known = ", ".join(sorted(P.PRESETS))
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty simulated machine spec {spec!r}; give targets like "
                         f"'gfx942' or 'gfx942x2,gfx1100' (known targets: {known})")
    out: list[str] = []
    for raw in spec.split(","):
        part = raw.strip().lower()
        count = None
        for target in sorted(P.PRESETS, key=len, reverse=True):
            if part == target:
                count = 1
            elif part.startswith(target + "x") and part[len(target) + 1:].isdigit():
                count = int(part[len(target) + 1:])
            if count is not None:
                break
        if count is None or target not in TARGETS:
            raise ValueError(f"bad part {raw.strip()!r} in simulated machine spec {spec!r}: "
                             f"expected <target>[x<count>] with a known target ({known})")
        if count < 1:
            raise ValueError(f"bad count in {raw.strip()!r} of spec {spec!r}: must be >= 1")
        out.extend([target] * count)
    if len(out) > MAX_GPUS:
        raise ValueError(f"spec {spec!r} asks for {len(out)} GPUs; at most {MAX_GPUS}")
    return out


def _hash_32(val: int, bits: int) -> int:
    """hash_32() of include/linux/hash.h."""
    return ((val * GOLDEN_RATIO_32) & 0xFFFF_FFFF) >> (32 - bits)


def kfd_gpu_id(*, devfn: int, subsystem: int, domain: int, device_id: int, bus: int,
               vram_size: int, first_xcc: int, num_xcc: int) -> int:
    """kfd_generate_gpu_id (kfd_topology.c, facts §6): XOR of hash_32 over the identity."""
    buf = [devfn, subsystem, domain, device_id, bus, vram_size & 0xFFFF_FFFF,
           vram_size >> 32, first_xcc | (num_xcc << 16)]
    h = 0
    for v in buf:
        h ^= _hash_32(v & 0xFFFF_FFFF, KFD_GPU_ID_HASH_WIDTH)
    return h


class SimMachine:
    """The simulated host. `devices` in spec order; `close()` ends every process and engine.

    Options: `kfd_version` (what GET_VERSION reports; ioctls newer than it are ENOTTY),
    `vram_size` (bytes per GPU, overriding the presets: small values make VRAM exhaustion
    testable), `engine_factory` (callable(device) -> engine; default sim.gpu.GPUEngine),
    `system_memory` (bytes of host RAM the limits on GTT/userptr BOs derive from).
    """

    def __init__(self, spec: str = "gfx942", *, kfd_version: tuple[int, int] = (1, 17),
                 vram_size: int | None = None,
                 engine_factory: Callable[[SimDevice], object] | None = None,
                 system_memory: int | None = None) -> None:
        targets = parse_spec(spec)
        if len(tuple(kfd_version)) != 2 or kfd_version[0] != 1:
            raise ValueError(f"kfd_version {kfd_version!r}: only major version 1 exists")
        self.spec = spec
        self.kfd_version = tuple(kfd_version)
        self.lock = threading.RLock()
        self.closed = False
        self.processes: list = []
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        self.system_memory = total if system_memory is None else system_memory
        # amdgpu_amdkfd_gpuvm_init_mem_limits: system (GTT + userptr) limit 63/64 of RAM less
        # 1.5 GiB (half of it on small hosts); TTM (GTT) limit ttm_tt_pages_limit(), half of
        # RAM by default (ttm_device.c ttm_global_init).
        mem = self.system_memory
        limit = mem - (mem >> 6)
        self.system_mem_limit = limit >> 1 if limit < 2 * RESERVE_MEM_LIMIT \
            else limit - RESERVE_MEM_LIMIT
        self.ttm_mem_limit = mem >> 1
        self.system_mem_used = 0
        self.ttm_mem_used = 0
        self.devices: list[SimDevice] = []
        self._write_hooks: list[Callable[[], None]] = []
        try:
            self._build_devices(targets, vram_size, engine_factory)
        except BaseException:
            for d in self.devices:
                d.close()
            raise
        self.sysfs_files: dict[str, str] = {}
        self.sysfs_dirs: dict[str, list[str]] = {}
        self._build_sysfs()

    # -- devices -------------------------------------------------------------------------------
    def _build_devices(self, targets: list[str], vram_size: int | None, factory) -> None:
        seen: dict[str, int] = {}
        taken: set[int] = set()
        for index, target in enumerate(targets):
            preset = P.get_preset(target)
            k = seen.get(target, 0)
            seen[target] = k + 1
            props = dict(preset.properties)
            bus = (preset.pci_bus + 0x10 * k) & 0xFF
            vram = preset.vram_size if vram_size is None else int(vram_size)
            props["drm_render_minor"] = 128 + index
            props["location_id"] = bus << 8            # devfn 0 (BDFID as rocminfo prints)
            props["hive_id"] = preset.xgmi_hive if targets.count(target) > 1 else 0
            props["unique_id"] = preset.properties["unique_id"] ^ (k * 0x9E3779B97F4A7C15
                                                                  & 0xFFFF_FFFF_FFFF_FFFF)
            gpu_id = kfd_gpu_id(devfn=0, subsystem=0x1002 | (props["device_id"] << 16),
                                domain=props["domain"], device_id=props["device_id"], bus=bus,
                                vram_size=vram, first_xcc=0, num_xcc=props["num_xcc"])
            while gpu_id == 0 or gpu_id in taken:     # GAP: newest-kernel fix-ups not read
                gpu_id = (gpu_id + 1) & 0xFFFF
            taken.add(gpu_id)
            dev = SimDevice(self, index=index, node_index=index + 1, preset=preset,
                            gpu_id=gpu_id, properties=props, vram_size=vram,
                            engine_factory=factory)
            self.devices.append(dev)
            hook = getattr(dev.engine, "memory_written", None)
            if hook is not None:
                self._write_hooks.append(hook)

    def device_by_gpu_id(self, gpu_id: int) -> SimDevice | None:
        return next((d for d in self.devices if d.gpu_id == gpu_id), None)

    def device_by_minor(self, minor: int) -> SimDevice | None:
        return next((d for d in self.devices if d.render_minor == minor), None)

    # -- memory accounting and notification -----------------------------------------------------
    def reserve_memory(self, device: SimDevice, vram: int, system: int, ttm: int = 0) -> None:
        """amdgpu_amdkfd_reserve_mem_limit: ENOMEM past the system, TTM or VRAM limit."""
        with self.lock:
            if self.system_mem_used + system > self.system_mem_limit:
                raise DriverError(E.ENOMEM, "system memory limit for GPU allocations reached")
            if self.ttm_mem_used + ttm > self.ttm_mem_limit:
                raise DriverError(E.ENOMEM, "TTM (GTT) memory limit reached")
            if vram:
                device.reserve_vram(vram)
            self.system_mem_used += system
            self.ttm_mem_used += ttm

    def unreserve_memory(self, device: SimDevice, vram: int, system: int, ttm: int = 0) -> None:
        """amdgpu_amdkfd_unreserve_mem_limit."""
        if vram:
            device.unreserve_vram(vram)
        with self.lock:
            self.system_mem_used -= system
            self.ttm_mem_used -= ttm

    def memory_written(self) -> None:
        """A GPU engine wrote memory: every engine re-checks what it waits on."""
        for hook in self._write_hooks:
            hook()

    # -- processes ----------------------------------------------------------------------------
    def register_process(self, process) -> None:
        with self.lock:
            if self.closed:
                raise DriverError(E.ENODEV, "the simulated machine is closed")
            self.processes.append(process)

    def unregister_process(self, process) -> None:
        with self.lock:
            if process in self.processes:
                self.processes.remove(process)

    # -- sysfs --------------------------------------------------------------------------------
    def _build_sysfs(self) -> None:
        files, dirs = self.sysfs_files, self.sysfs_dirs
        root = TOPOLOGY_PATH
        n_nodes = 1 + len(self.devices)
        # generation_count: one update for the CPU/CRAT init plus one per GPU added (DERIVED).
        files[f"{root}/generation_id"] = f"{n_nodes}\n"
        files[f"{root}/system_properties"] = P.format_properties(
            [("platform_oem", 0), ("platform_id", 0), ("platform_rev", 0)])  # NOT SOURCED
        dirs[root] = ["generation_id", "nodes", "system_properties"]
        dirs[f"{root}/nodes"] = [str(i) for i in range(n_nodes)]
        links = self._links()
        self._cpu_node(f"{root}/nodes/0", links)
        for dev in self.devices:
            self._gpu_node(f"{root}/nodes/{dev.node_index}", dev, links)
        for alias in SYSFS_ALIASES:
            for k, v in list(files.items()):
                files[alias + k[len(root):]] = v
            for k, v in list(dirs.items()):
                if k.startswith(root):
                    dirs[alias + k[len(root):]] = v

    def _links(self) -> dict[int, list[dict]]:
        """io_links per node: GPU<->CPU PCIe both ways, XGMI between GPUs of one hive."""
        links: dict[int, list[dict]] = {0: []}
        for d in self.devices:
            links[d.node_index] = []
        for d in self.devices:
            bw = d.preset.pcie_bandwidth_mbs
            links[d.node_index].append(_link(P.IOLINK_TYPE_PCIEXPRESS, d.node_index, 0, 20, bw))
            links[0].append(_link(P.IOLINK_TYPE_PCIEXPRESS, 0, d.node_index, 20, bw))
        for a in self.devices:
            for b in self.devices:
                if a is b or not a.properties["hive_id"]:
                    continue
                if a.properties["hive_id"] == b.properties["hive_id"]:
                    # KFD_CRAT_XGMI_WEIGHT 15 (NOT SOURCED here); bandwidth NOT SOURCED.
                    bw = a.preset.xgmi_bandwidth_mbs
                    links[a.node_index].append(
                        _link(P.IOLINK_TYPE_XGMI, a.node_index, b.node_index, 15, bw))
        return links

    def _write_links(self, base: str, links: list[dict]) -> None:
        self.sysfs_dirs[f"{base}/io_links"] = [str(i) for i in range(len(links))]
        for i, link in enumerate(links):
            self.sysfs_files[f"{base}/io_links/{i}/properties"] = P.format_properties(
                list(link.items()))
            self.sysfs_dirs[f"{base}/io_links/{i}"] = ["properties"]
        self.sysfs_dirs[f"{base}/p2p_links"] = []

    def _node_dirs(self, base: str) -> None:
        self.sysfs_dirs[base] = ["caches", "gpu_id", "io_links", "mem_banks", "name",
                                 "p2p_links", "perf", "properties"]
        self.sysfs_dirs[f"{base}/perf"] = []

    def _cpu_node(self, base: str, links: dict[int, list[dict]]) -> None:
        files = self.sysfs_files
        self._node_dirs(base)
        props = {k: 0 for k in P.COMMON_KEYS}
        props["cpu_cores_count"] = os.cpu_count() or 1
        props["mem_banks_count"] = 1
        props["io_links_count"] = len(links[0])
        items = [(k, props[k]) for k in P.COMMON_KEYS] + [(P.LAST_KEY, P.HOST_CPU_MHZ)]
        files[f"{base}/properties"] = P.format_properties(items)
        files[f"{base}/gpu_id"] = "0\n"
        files[f"{base}/name"] = "\n"
        self.sysfs_dirs[f"{base}/mem_banks"] = ["0"]
        self.sysfs_dirs[f"{base}/mem_banks/0"] = ["properties"]
        files[f"{base}/mem_banks/0/properties"] = P.format_properties([
            ("heap_type", P.HEAP_TYPE_SYSTEM), ("size_in_bytes", self.system_memory),
            ("flags", 0), ("width", 64), ("mem_clk_max", 0)])
        self.sysfs_dirs[f"{base}/caches"] = []   # CPU caches omitted (simplification)
        self._write_links(base, links[0])

    def _gpu_node(self, base: str, dev: SimDevice, links: dict[int, list[dict]]) -> None:
        files = self.sysfs_files
        self._node_dirs(base)
        props = dev.properties
        caches = P.gpu_cache_entries(dev.preset, props["simd_id_base"])
        props["mem_banks_count"] = 1
        props["caches_count"] = len(caches)
        props["io_links_count"] = len(links[dev.node_index])
        props["p2p_links_count"] = 0
        props.setdefault("cpu_cores_count", 0)
        props.setdefault("cpu_core_id_base", 0)
        order = list(P.COMMON_KEYS) + list(P.GPU_KEYS)
        ordered = {k: props[k] for k in order}
        dev.properties = ordered | {P.LAST_KEY: P.HOST_CPU_MHZ}
        files[f"{base}/properties"] = P.format_properties(list(dev.properties.items()))
        files[f"{base}/gpu_id"] = f"{dev.gpu_id}\n"
        files[f"{base}/name"] = f"{dev.name}\n"
        self.sysfs_dirs[f"{base}/mem_banks"] = ["0"]
        self.sysfs_dirs[f"{base}/mem_banks/0"] = ["properties"]
        files[f"{base}/mem_banks/0/properties"] = P.format_properties([
            ("heap_type", P.HEAP_TYPE_FB_PUBLIC), ("size_in_bytes", dev.vram_size),
            ("flags", 0), ("width", dev.preset.vram_width),
            ("mem_clk_max", dev.preset.vram_clk_mhz)])
        self.sysfs_dirs[f"{base}/caches"] = [str(i) for i in range(len(caches))]
        for i, entry in enumerate(caches):
            self.sysfs_dirs[f"{base}/caches/{i}"] = ["properties"]
            files[f"{base}/caches/{i}/properties"] = P.format_cache(entry)
        self._write_links(base, links[dev.node_index])

    def read_sysfs(self, path: str) -> str:
        """Contents of a file of the tree; FileNotFoundError / IsADirectoryError otherwise."""
        path = _norm(path)
        try:
            return self.sysfs_files[path]
        except KeyError:
            if path in self.sysfs_dirs:
                raise IsADirectoryError(E.EISDIR, "Is a directory", path) from None
            raise FileNotFoundError(E.ENOENT, "No such file or directory", path) from None

    def list_sysfs(self, path: str) -> list[str]:
        path = _norm(path)
        try:
            return sorted(self.sysfs_dirs[path])
        except KeyError:
            if path in self.sysfs_files:
                raise NotADirectoryError(E.ENOTDIR, "Not a directory", path) from None
            raise FileNotFoundError(E.ENOENT, "No such file or directory", path) from None

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """End every process (its SimPort's close_port) and stop the engines."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            procs = list(self.processes)
        for p in procs:
            port = getattr(p, "port", None)
            try:
                if port is not None:
                    port.close_port()
                else:
                    p.teardown()
            except Exception:
                log.exception("closing simulated process %r", p)
        for d in self.devices:
            try:
                d.close()
            except Exception:
                log.exception("closing %r", d)

    def __enter__(self) -> SimMachine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        gpus = ", ".join(f"node {d.node_index}: {d.target.name} gpu_id {d.gpu_id:#06x} "
                         f"renderD{d.render_minor}" for d in self.devices)
        return f"SimMachine({self.spec!r}, KFD {self.kfd_version[0]}.{self.kfd_version[1]}): {gpus}"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


def _link(kind: int, node_from: int, node_to: int, weight: int, bw: int) -> dict:
    """iolink_show keys in order (TOPO). Latencies NOT SOURCED (0); flags 1 = ENABLED."""
    return {"type": kind, "version_major": 0, "version_minor": 0, "node_from": node_from,
            "node_to": node_to, "weight": weight, "min_latency": 0, "max_latency": 0,
            "min_bandwidth": bw, "max_bandwidth": bw, "recommended_transfer_size": 0,
            "flags": 1}


def _norm(path: str) -> str:
    path = os.path.normpath(path)
    return path.rstrip("/") or "/"
