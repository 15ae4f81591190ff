"""``python -m pytest_amdgpu info``: the GPUs this machine (or a simulated one) offers.

Without a GPU it says so and why (no /dev/kfd, no topology, no permission) and exits 0: "no
GPU" is an answer, not an error. ``--sim SPEC`` shows the topology the simulator would present
for SPEC (e.g. ``gfx942x2,gfx1100``), read through the very same ioctl and sysfs path.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

from ..errors import AmdgpuError, TopologyError
from ..kfd.errors import KFDError
from ..kfd.port import KFD_PATH, TOPOLOGY_PATH, LinuxPort, Port
from ..kfd.topology import Node, Topology, read_topology

__all__ = ["add_arguments", "collect", "main", "run", "SystemInfo"]


@dataclass
class SystemInfo:
    """What `info` found: backend, KFD version, topology, and the reasons for what is missing."""

    backend: str
    source: str
    kfd_version: tuple[int, int] | None = None
    topology: Topology | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def gpus(self) -> list[Node]:
        return self.topology.gpus if self.topology is not None else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim", metavar="SPEC",
                        help="show the simulated GPUs for SPEC (e.g. gfx942x2,gfx1100) instead "
                             "of this machine's")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def collect(port: Port, *, backend: str, source: str) -> SystemInfo:
    """Open the KFD through `port` for its version and read the topology."""
    from ..kfd.ioctl import KFD

    info = SystemInfo(backend, source)
    try:
        with KFD(port) as kfd:
            info.kfd_version = kfd.version
    except KFDError as exc:
        info.problems.append(_kfd_problem(exc))
    try:
        info.topology = read_topology(port)
    except TopologyError as exc:
        info.problems.append(str(exc))
    if info.topology is not None and not info.gpus:
        info.problems.append(f"the KFD topology ({TOPOLOGY_PATH}) lists no GPU node")
    if info.topology is not None:
        for index, reason in info.topology.inaccessible:
            info.problems.append(f"node {index} skipped: {reason} (device cgroup or container "
                                 "without this GPU)")
    return info


def _kfd_problem(exc: KFDError) -> str:
    if exc.ioctl == "open":
        return exc.hint or str(exc)
    return str(exc)


def _size(n: int) -> str:
    if n <= 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def _node_dict(n: Node) -> dict:
    return {
        "node": n.index, "gpu_id": n.gpu_id, "target": n.target_name, "name": n.name,
        "gfx_target_version": n.gfx_target_version, "compute_units": n.cu_count,
        "simd_count": n.simd_count, "num_xcc": n.num_xcc, "wave_front_size": n.wave_front_size,
        "vram_bytes": n.local_mem_size, "render_node": n.render_node,
        "device_id": n.device_id, "location_id": n.location_id,
    }


def render_text(info: SystemInfo) -> str:
    version = (f"KFD ioctl version {info.kfd_version[0]}.{info.kfd_version[1]}"
               if info.kfd_version else "KFD version unknown")
    lines = [f"backend {info.backend} ({info.source}), {version}"]
    gpus = info.gpus
    if not gpus:
        why = "; ".join(info.problems) or "no reason found"
        lines.append(f"No AMD GPU available: {why}")
        if info.backend == "kfd":
            lines.append("Tests can still run on the simulator: --amdgpu-backend=sim "
                         "(or 'python -m pytest_amdgpu info --sim gfx942').")
        return "\n".join(lines)
    header = ("node", "gpu_id", "target", "name", "CUs", "XCC", "wave", "VRAM", "render node",
              "PCI")
    rows = [header]
    for n in gpus:
        rows.append((str(n.index), str(n.gpu_id), n.target_name or "?", n.name or "-",
                     str(n.cu_count), str(n.num_xcc), str(n.wave_front_size),
                     _size(n.local_mem_size), n.render_node or "-", n.pci_address))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append(f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}"
                 + (f", {len(info.topology.cpus)} CPU node(s)" if info.topology else ""))
    lines.extend(f"note: {p}" for p in info.problems)
    return "\n".join(lines)


def render_json(info: SystemInfo) -> str:
    return json.dumps({
        "backend": info.backend, "source": info.source,
        "kfd_version": list(info.kfd_version) if info.kfd_version else None,
        "gpus": [_node_dict(n) for n in info.gpus], "problems": info.problems,
    }, indent=2)


def run(args: argparse.Namespace) -> int:
    if args.sim:
        from ..backends import get_backend

        try:
            port = get_backend("sim").make_port(sim=args.sim)
        except ImportError as exc:
            print(f"the simulator is not available: {exc}", file=sys.stderr)
            return 2
        except (AmdgpuError, ValueError, KeyError) as exc:
            print(f"cannot simulate {args.sim!r}: {exc}", file=sys.stderr)
            return 2
        try:
            info = collect(port, backend="sim", source=f"simulated {args.sim}")
        finally:
            port.close_port()
    else:
        info = collect(LinuxPort(), backend="kfd", source=KFD_PATH)
    print(render_json(info) if args.json else render_text(info))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_amdgpu info",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
