"""The KFD topology in sysfs (/sys/devices/virtual/kfd/kfd/topology), read through a Port.

Layout (amdkfd/kfd_topology.c, facts-kfd.md §6): ``generation_id``, ``system_properties``, and
``nodes/<n>/`` with ``gpu_id`` (0 for a CPU node), ``name``, ``properties`` and the optional
directories ``mem_banks``, ``caches``, ``io_links``, ``p2p_links`` whose entries each hold a
``properties`` file. Every properties line is ``"<key> <decimal>"``; exceptions are a cache's
``sibling_map`` (comma-separated bits) and, on newer kernels, ``unique_id`` in hex.

The reader tolerates unknown keys, CPU-only nodes and missing optional directories, re-reads
the tree when ``generation_id`` changes while it reads (a GPU was hot-plugged or a partition
mode changed), and reports a malformed tree with `TopologyError` naming the file and line.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import TopologyError
from ..targets import Target, get_target, target_name_from_version
from .port import TOPOLOGY_PATH, Port

__all__ = [
    "Node", "Topology", "read_topology", "parse_properties", "HEAP_FB_PUBLIC",
    "HEAP_FB_PRIVATE", "MAX_RETRIES",
]

MAX_RETRIES = 5

# mem_banks heap_type (kfd_topology.h HSA_MEM_HEAP_TYPE_*)
HEAP_SYSTEM = 0
HEAP_FB_PUBLIC = 1
HEAP_FB_PRIVATE = 2

# Keys every GPU node's properties must carry: without them no queue can be sized.
GPU_REQUIRED = (
    "gfx_target_version", "simd_count", "simd_per_cu", "array_count",
    "simd_arrays_per_engine", "wave_front_size", "drm_render_minor",
)
_SUBDIRS = ("mem_banks", "caches", "io_links", "p2p_links")


def _malformed(path: str, line: int | None, what: str) -> TopologyError:
    where = f"{path}, line {line}" if line is not None else path
    return TopologyError(f"malformed KFD topology: {where}: {what}")


def parse_properties(text: str, path: str) -> dict:
    """Parse a sysfs properties file: ``key value`` per line, values decimal integers.

    ``sibling_map`` becomes a tuple of ints, a non-decimal ``unique_id`` is read as hex.
    Raises TopologyError naming `path` and the line on anything else.
    """
    out: dict = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise _malformed(path, lineno, f"{line!r} is not '<key> <value>'")
        key, value = parts
        if key == "sibling_map":
            try:
                out[key] = tuple(map(int, filter(None, value.split(","))))
            except ValueError:
                raise _malformed(path, lineno, f"{line!r}: sibling_map is not a "
                                               "comma-separated list of integers") from None
            continue
        try:
            out[key] = int(value, 10)
        except ValueError:
            if key == "unique_id":
                try:
                    out[key] = int(value, 16)
                    continue
                except ValueError:
                    pass
            raise _malformed(path, lineno, f"{line!r}: the value of {key!r} is not a decimal "
                                           "integer") from None
    return out


@dataclass(frozen=True, eq=False)
class Node:
    """One topology node: a CPU (gpu_id 0) or a GPU (or GPU partition)."""

    index: int
    gpu_id: int
    name: str
    properties: dict = field(repr=False)
    mem_banks: list = field(default_factory=list, repr=False)
    caches: list = field(default_factory=list, repr=False)
    io_links: list = field(default_factory=list, repr=False)
    p2p_links: list = field(default_factory=list, repr=False)

    def prop(self, key: str, default: int = 0) -> int:
        return self.properties.get(key, default)

    @property
    def is_gpu(self) -> bool:
        return self.gpu_id != 0

    @property
    def gfx_target_version(self) -> int:
        return self.prop("gfx_target_version")

    @property
    def target_name(self) -> str | None:
        """LLVM processor name (gfx90a, gfx942, gfx1100, …), None for a CPU node."""
        v = self.gfx_target_version
        if not self.is_gpu or v <= 0:
            return None
        return target_name_from_version(v)

    @property
    def target(self) -> Target | None:
        """The Target table entry, None for a CPU node or a target the table lacks."""
        name = self.target_name
        if name is None:
            return None
        try:
            return get_target(name)
        except KeyError:
            return None

    # properties the runtime and the simulator need
    @property
    def simd_count(self) -> int:
        return self.prop("simd_count")

    @property
    def simd_per_cu(self) -> int:
        return self.prop("simd_per_cu")

    @property
    def cu_count(self) -> int:
        """Active compute units of the node (all XCCs)."""
        per = self.simd_per_cu
        return self.simd_count // per if per else 0

    @property
    def array_count(self) -> int:
        return self.prop("array_count")

    @property
    def simd_arrays_per_engine(self) -> int:
        return self.prop("simd_arrays_per_engine")

    @property
    def cu_per_simd_array(self) -> int:
        return self.prop("cu_per_simd_array")

    @property
    def lds_size_in_kb(self) -> int:
        return self.prop("lds_size_in_kb")

    @property
    def wave_front_size(self) -> int:
        return self.prop("wave_front_size")

    @property
    def max_waves_per_simd(self) -> int:
        return self.prop("max_waves_per_simd")

    @property
    def num_xcc(self) -> int:
        """XCCs in the node; kernels before ~6.5 do not print the key (then 1)."""
        return self.prop("num_xcc", 1) or 1

    @property
    def drm_render_minor(self) -> int:
        return self.prop("drm_render_minor", -1) if self.is_gpu else -1

    @property
    def render_node(self) -> str | None:
        """Path of the node's DRM render node, e.g. /dev/dri/renderD128."""
        minor = self.drm_render_minor
        return f"/dev/dri/renderD{minor}" if minor >= 0 else None

    @property
    def num_sdma_engines(self) -> int:
        return self.prop("num_sdma_engines")

    @property
    def num_sdma_xgmi_engines(self) -> int:
        return self.prop("num_sdma_xgmi_engines")

    @property
    def num_sdma_queues_per_engine(self) -> int:
        return self.prop("num_sdma_queues_per_engine")

    @property
    def num_cp_queues(self) -> int:
        return self.prop("num_cp_queues")

    @property
    def capability(self) -> int:
        return self.prop("capability")

    @property
    def device_id(self) -> int:
        return self.prop("device_id")

    @property
    def vendor_id(self) -> int:
        return self.prop("vendor_id")

    @property
    def location_id(self) -> int:
        return self.prop("location_id")

    @property
    def domain(self) -> int:
        return self.prop("domain")

    @property
    def hive_id(self) -> int:
        return self.prop("hive_id")

    @property
    def max_engine_clk_fcompute(self) -> int:
        return self.prop("max_engine_clk_fcompute")

    @property
    def local_mem_size(self) -> int:
        """VRAM bytes: the FB heaps of mem_banks (the ``local_mem_size`` key is always 0)."""
        return sum(b.get("size_in_bytes", 0) for b in self.mem_banks
                   if b.get("heap_type") in (HEAP_FB_PUBLIC, HEAP_FB_PRIVATE))

    @property
    def pci_address(self) -> str:
        """domain:bus:device.function from domain and location_id (bus<<8 | devfn)."""
        loc = self.location_id
        return f"{self.domain:04x}:{loc >> 8:02x}:{(loc >> 3) & 0x1F:02x}.{loc & 7:x}"


@dataclass(frozen=True, eq=False)
class Topology:
    """The whole tree at one generation."""

    generation_id: int
    system_properties: dict
    nodes: list
    inaccessible: list = field(default_factory=list)   # (node index, reason) skipped nodes

    @property
    def gpus(self) -> list[Node]:
        return [n for n in self.nodes if n.is_gpu]

    @property
    def cpus(self) -> list[Node]:
        return [n for n in self.nodes if not n.is_gpu]

    def node_by_gpu_id(self, gpu_id: int) -> Node:
        for n in self.nodes:
            if n.gpu_id == gpu_id and n.is_gpu:
                return n
        known = ", ".join(str(n.gpu_id) for n in self.gpus) or "none"
        raise KeyError(f"no GPU with gpu_id {gpu_id} in the KFD topology (gpu_ids: {known})")

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


class _TreeChanged(Exception):
    """The tree changed under the reader (a file or directory vanished)."""


class _Reader:
    def __init__(self, port: Port, root: str) -> None:
        self.port = port
        self.root = root.rstrip("/")

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def read(self, rel: str, *, optional: bool = False) -> str | None:
        try:
            return self.port.read_sysfs(self.path(rel))
        except FileNotFoundError:
            if optional:
                return None
            raise _malformed(self.path(rel), None, "the file is missing") from None
        except PermissionError:
            raise
        except OSError as exc:
            raise TopologyError(f"cannot read {self.path(rel)}: "
                                f"{_errno.errorcode.get(exc.errno or 0, exc)}") from exc

    def listdir(self, rel: str, *, optional: bool = False) -> list[str] | None:
        try:
            names = self.port.list_sysfs(self.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            if optional:
                return None
            raise _malformed(self.path(rel), None, "the directory is missing") from None
        except OSError as exc:
            raise TopologyError(f"cannot list {self.path(rel)}: "
                                f"{_errno.errorcode.get(exc.errno or 0, exc)}") from exc
        return sorted((n for n in names if n.isdigit()), key=int)

    def integer(self, rel: str) -> int:
        text = self.read(rel)
        value = text.strip()
        try:
            return int(value, 10)
        except ValueError:
            raise _malformed(self.path(rel), 1, f"{value!r} is not a decimal integer") from None

    def properties(self, rel: str, *, optional: bool = False) -> dict | None:
        text = self.read(rel, optional=optional)
        if text is None:
            return None
        return parse_properties(text, self.path(rel))

    def node(self, index: str) -> Node:
        base = f"nodes/{index}"
        gpu_id = self.integer(f"{base}/gpu_id")
        name = (self.read(f"{base}/name", optional=True) or "").strip()
        props = self.properties(f"{base}/properties")
        if gpu_id != 0:
            missing = [k for k in GPU_REQUIRED if k not in props]
            if missing:
                raise _malformed(self.path(f"{base}/properties"), None,
                                 f"GPU node (gpu_id {gpu_id}) lacks {', '.join(missing)}")
            version = props["gfx_target_version"]
            try:
                target_name_from_version(version)
            except ValueError as exc:
                line = _line_of(self.read(f"{base}/properties"), "gfx_target_version")
                raise _malformed(self.path(f"{base}/properties"), line, str(exc)) from None
        subs: dict[str, list[dict]] = {}
        for sub in _SUBDIRS:
            entries = self.listdir(f"{base}/{sub}", optional=True) or []
            subs[sub] = [self.properties(f"{base}/{sub}/{e}/properties") for e in entries]
        return Node(int(index), gpu_id, name, props, **subs)

    def tree(self) -> Topology:
        generation = self.integer("generation_id")
        system = self.properties("system_properties", optional=True) or {}
        nodes: list[Node] = []
        skipped: list[tuple[int, str]] = []
        for index in self.listdir("nodes"):
            try:
                nodes.append(self.node(index))
            except PermissionError as exc:
                # the device cgroup hides this GPU from us (kfd_topology.c returns EPERM)
                skipped.append((int(index), f"permission denied reading "
                                            f"{exc.filename or self.path(f'nodes/{index}')}"))
        return Topology(generation, system, nodes, skipped)


def _line_of(text: str | None, key: str) -> int | None:
    for lineno, line in enumerate((text or "").splitlines(), 1):
        if line.split()[:1] == [key]:
            return lineno
    return None


def read_topology(port: Port, root: str = TOPOLOGY_PATH, *,
                  max_retries: int = MAX_RETRIES) -> Topology:
    """Read the KFD topology through `port`; consistent with one generation_id.

    Raises TopologyError if the tree is missing or malformed, or keeps changing.
    """
    reader = _Reader(port, root)
    try:
        reader.listdir("", optional=False)
    except TopologyError:
        raise TopologyError(
            f"no KFD topology at {root}: the amdgpu driver with KFD is not loaded (or sysfs "
            "is not mounted)") from None
    try:
        return _read_consistent(reader, root, max_retries)
    except PermissionError as exc:
        raise TopologyError(f"permission denied reading {exc.filename or root}: the KFD "
                            "topology is not readable by this user") from exc


def _read_consistent(reader: _Reader, root: str, max_retries: int) -> Topology:
    last = None
    for _ in range(max_retries + 1):
        before = reader.integer("generation_id")
        try:
            topo = reader.tree()
        except TopologyError:
            # a file that vanished mid-read is a change, not corruption, if the id moved
            if reader.integer("generation_id") != before:
                last = before
                continue
            raise
        after = reader.integer("generation_id")
        if before == after == topo.generation_id:
            return topo
        last = after
    raise TopologyError(
        f"the KFD topology at {root} kept changing while being read (generation_id was still "
        f"moving, last {last}, after {max_retries + 1} attempts); retry when GPUs have settled")
