"""Which devices a run uses, what they can do, and which tests they skip or expect to fail.

- `DeviceSlot`: one device of the run, known before anything is opened (from the simulator
  spec, or from the KFD topology in sysfs on hardware). ``amdgpu_device`` is parametrized over
  slots; a slot's ``key`` is the test id part (``gfx942``, then ``gfx942-1`` for a second one).
- `CAPABILITIES`: the names ``amdgpu_requires`` accepts, as data (from the target table or the
  topology).
- `MARKERS`: the plugin's markers; `KnownFailure`: the per-target known-failure list.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pytest


@dataclass(frozen=True)
class DeviceSlot:
    """One device a run may use, identified before it is opened."""

    key: str                      # test id part: "gfx942", "gfx942-1", …
    index: int                    # position among the backend's GPUs
    target: str                   # LLVM processor name
    backend: str
    simulated: bool
    gpu_id: int | None = None     # known up front on hardware, after opening on the simulator
    node_index: int | None = None
    lock_name: str = ""           # flock file stem; empty: no lock (a private simulated device)
    properties: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def describe(self) -> str:
        extra = [self.target] if self.key != self.target else []
        extra.append(f"device {self.index}")
        if self.gpu_id:
            extra.append(f"gpu_id {self.gpu_id:#x}")
        return f"{self.key} ({', '.join(extra)})"

    def to_json(self) -> dict:
        return {"key": self.key, "index": self.index, "target": self.target,
                "backend": self.backend, "simulated": self.simulated, "gpu_id": self.gpu_id,
                "node_index": self.node_index, "lock_name": self.lock_name,
                "properties": dict(self.properties)}

    @classmethod
    def from_json(cls, data: dict) -> DeviceSlot:
        return cls(key=data["key"], index=data["index"], target=data["target"],
                   backend=data["backend"], simulated=data["simulated"],
                   gpu_id=data.get("gpu_id"), node_index=data.get("node_index"),
                   lock_name=data.get("lock_name", ""),
                   properties=dict(data.get("properties") or {}))


def name_slots(entries: Sequence[dict]) -> list[DeviceSlot]:
    """Give each device its key: the target for the first of a target, then ``target-N``."""
    seen: dict[str, int] = {}
    out = []
    for i, e in enumerate(entries):
        n = seen.get(e["target"], 0)
        seen[e["target"]] = n + 1
        key = e["target"] if n == 0 else f"{e['target']}-{n}"
        out.append(DeviceSlot(key=key, index=i, **e))
    return out


def topology_candidates(backend, port_options: dict | None = None) -> list[DeviceSlot]:
    """Slots of the GPUs in a backend's KFD topology (sysfs only: no device is opened)."""
    return inventory(backend, port_options)[0]


def inventory(backend, port_options: dict | None = None) -> tuple[list[DeviceSlot], str]:
    """The GPUs of a backend's KFD topology and its KFD version ("" if /dev/kfd cannot be
    opened), read through one port of that backend."""
    from ..kfd.ioctl import KFD
    from ..kfd.topology import read_topology

    port = backend.make_port(**(port_options or {}))
    version = ""
    try:
        topo = read_topology(port)
        try:
            kfd = KFD(port)
            version = "{}.{}".format(*kfd.version)
            kfd.close()
        except Exception:  # the header line then says the version is unknown
            version = ""
    finally:
        try:
            port.close_port()
        except Exception:  # a port that cannot close cleanly must not hide the topology
            pass
    entries = []
    for node in topo.gpus:
        name = node.target_name or f"gfx_unknown_{node.gfx_target_version}"
        ident = (f"pci-{node.domain:04x}-{node.location_id:04x}" if node.location_id
                 else f"gpu-{node.gpu_id}")
        entries.append({"target": name, "backend": backend.name,
                        "simulated": backend.simulated, "gpu_id": node.gpu_id,
                        "node_index": node.index,
                        "lock_name": "" if backend.simulated else ident,
                        "properties": {k: v for k, v in node.properties.items()
                                       if isinstance(v, int)}})
    return name_slots(entries), version


def select_slots(candidates: Sequence[DeviceSlot], selectors: Sequence[str],
                 where: str = "--amdgpu-devices") -> list[DeviceSlot]:
    """Apply ``--amdgpu-devices``: indices, gpu_ids or target patterns; candidate order kept."""
    if not selectors:
        return list(candidates)
    chosen: set[int] = set()
    listing = "; ".join(s.describe() for s in candidates) or "none"
    for sel in selectors:
        hits = _match_selector(candidates, sel, where, listing)
        if not hits:
            raise pytest.UsageError(f"{where}: {sel!r} matches no device; accepted values: "
                                    f"indices, gpu_ids or target patterns of: {listing}")
        chosen.update(hits)
    return [s for s in candidates if s.index in chosen]


def _match_selector(candidates: Sequence[DeviceSlot], sel: str, where: str,
                    listing: str) -> list[int]:
    gpu_id: int | None = None
    if sel.lower().startswith("gpu_id:"):
        text = sel.split(":", 1)[1]
        try:
            gpu_id = int(text, 0)
        except ValueError:
            raise pytest.UsageError(f"{where}: {sel!r}: {text!r} is not a gpu_id; accepted "
                                    "values: gpu_id:N (decimal or 0x hex)") from None
    elif re.fullmatch(r"0[xX][0-9a-fA-F]+", sel):
        gpu_id = int(sel, 16)
    elif sel.isdigit():
        n = int(sel)
        if n < len(candidates):
            return [n]
        gpu_id = n
    if gpu_id is not None:
        return [s.index for s in candidates if s.gpu_id == gpu_id]
    pattern = sel.lower()
    return [s.index for s in candidates
            if fnmatch.fnmatchcase(s.target, pattern) or fnmatch.fnmatchcase(s.key, pattern)]


# --- capabilities ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Capability:
    """A name ``amdgpu_requires`` accepts and how to tell whether a device has it."""

    name: str
    description: str
    source: str                                       # "target" or "topology"
    check: Callable[[object, dict], bool]             # (Target, topology properties) -> bool


def _t(attr: str) -> Callable[[object, dict], bool]:
    return lambda target, props: bool(getattr(target, attr))


def _p(key: str, minimum: int, default: int = 0) -> Callable[[object, dict], bool]:
    return lambda target, props: int(props.get(key, default)) >= minimum


CAPABILITIES: dict[str, Capability] = {c.name: c for c in (
    Capability("wave32", "kernels may run 32-wide waves", "target",
               lambda t, p: 32 in t.wave_sizes),
    Capability("wave64", "kernels may run 64-wide waves", "target",
               lambda t, p: 64 in t.wave_sizes),
    Capability("wave32_default", "the default wave size is 32 (RDNA)", "target",
               lambda t, p: t.wave_size == 32),
    Capability("agprs", "an accumulation VGPR file (MAI targets)", "target", _t("has_agprs")),
    Capability("xnack", "the target supports XNACK (retry on page fault)", "target",
               _t("xnack_supported")),
    Capability("sramecc", "the target supports SRAM ECC", "target", _t("sramecc_supported")),
    Capability("architected_flat_scratch", "the hardware sets FLAT_SCRATCH for waves",
               "target", _t("architected_flat_scratch")),
    Capability("private_segment_buffer", "scratch through a buffer resource in s[0:3]",
               "target", _t("private_segment_buffer")),
    Capability("cu_mask_pairs", "SET_CU_MASK requires whole WGP pairs", "target",
               _t("cu_mask_in_pairs")),
    Capability("gcr_cache_control", "RELEASE_MEM / ACQUIRE_MEM take the gfx10+ GCR form",
               "target", lambda t, p: t.release_mem_form == "gfx10"),
    Capability("sdma", "at least one SDMA engine", "topology", _p("num_sdma_engines", 1)),
    Capability("multi_sdma", "two or more PCIe SDMA engines", "topology",
               _p("num_sdma_engines", 2)),
    Capability("sdma_xgmi", "SDMA engines dedicated to XGMI (peer) copies", "topology",
               _p("num_sdma_xgmi_engines", 1)),
    Capability("multi_xcc", "more than one XCC (compute partition of several dies)",
               "topology", _p("num_xcc", 2, default=1)),
    Capability("gws", "global wave sync resources (ALLOC_QUEUE_GWS)", "topology",
               _p("num_gws", 1)),
)}


def has_capability(name: str, target_name: str, properties: dict | None) -> bool | None:
    """Whether a device has a capability; None when the topology is not known yet."""
    from ..targets import get_target

    cap = CAPABILITIES[name]
    try:
        target = get_target(target_name)
    except KeyError:
        target = None
    if cap.source == "target":
        return None if target is None else cap.check(target, properties or {})
    if not properties:
        return None
    return cap.check(target, properties)


# --- markers -----------------------------------------------------------------------------------

MARKERS = {
    "amdgpu_target": "amdgpu_target(*patterns): run only on devices whose target matches one "
                     "of the fnmatch patterns (e.g. 'gfx9*', 'gfx1100'); other devices skip.",
    "amdgpu_requires": "amdgpu_requires(*capabilities): run only on devices with every "
                       "capability (" + ", ".join(CAPABILITIES) + "); others skip.",
    "amdgpu_min_devices": "amdgpu_min_devices(n): needs n devices in this process "
                          "(amdgpu_devices); skips otherwise.",
    "amdgpu_hw_only": "amdgpu_hw_only: run only on real hardware (skips on a simulated "
                      "backend).",
    "amdgpu_sim_only": "amdgpu_sim_only: run only on a simulated backend.",
    "amdgpu_area": "amdgpu_area(name): the conformance area of the test in reports and the "
                   "area x target matrix.",
}


def marker_args(item: pytest.Item, name: str) -> list[tuple]:
    return [tuple(m.args) for m in item.iter_markers(name)]


def target_skip(item: pytest.Item, slot: DeviceSlot) -> str | None:
    for patterns in marker_args(item, "amdgpu_target"):
        if not patterns:
            continue
        if not any(fnmatch.fnmatchcase(slot.target, str(p)) for p in patterns):
            shown = ", ".join(repr(str(p)) for p in patterns)
            return f"target {slot.target} of device {slot.key} does not match amdgpu_target({shown})"
    return None


def unknown_capabilities(item: pytest.Item) -> list[str]:
    return [str(c) for args in marker_args(item, "amdgpu_requires") for c in args
            if str(c) not in CAPABILITIES]


def capability_skip(item: pytest.Item, target: str, properties: dict | None,
                    key: str) -> tuple[str | None, list[str]]:
    """(skip reason or None, capabilities that can only be decided once the device is open)."""
    pending = []
    for args in marker_args(item, "amdgpu_requires"):
        for cap in args:
            cap = str(cap)
            if cap not in CAPABILITIES:
                continue
            have = has_capability(cap, target, properties)
            if have is None:
                pending.append(cap)
            elif not have:
                return (f"device {key} ({target}) lacks capability {cap!r}: "
                        f"{CAPABILITIES[cap].description}"), []
    return None, pending


def min_devices(item: pytest.Item) -> int:
    needs = [int(args[0]) for args in marker_args(item, "amdgpu_min_devices") if args]
    return max(needs, default=0)


def area_of(item: pytest.Item) -> str:
    """``amdgpu_area`` marker, else the module name without ``test_``."""
    marker = item.get_closest_marker("amdgpu_area")
    if marker is not None and marker.args:
        return str(marker.args[0])
    path = getattr(item, "path", None)
    stem = os.path.splitext(os.path.basename(str(path)))[0] if path else item.nodeid.split("::")[0]
    return stem[5:] if stem.startswith("test_") else stem


# --- known failures ----------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownFailure:
    """One entry of the known-failure list."""

    test: str        # fnmatch pattern on the test id (any trailing part of the path matches)
    target: str      # fnmatch pattern on the device target ("*" also matches device-less tests)
    reason: str
    backend: str = "*"
    where: str = ""  # file:line, for messages

    def matches(self, nodeid: str, target: str | None, backend: str) -> bool:
        if not fnmatch.fnmatchcase(backend, self.backend):
            return False
        if target is None:
            if self.target != "*":
                return False
        elif not fnmatch.fnmatchcase(target, self.target):
            return False
        return any(fnmatch.fnmatchcase(c, self.test) for c in _id_candidates(nodeid))


def _id_candidates(nodeid: str) -> Iterable[str]:
    bare = nodeid.split("[", 1)[0]
    for ident in (nodeid, bare) if bare != nodeid else (nodeid,):
        parts = ident.split("/")
        for i in range(len(parts)):
            yield "/".join(parts[i:])


def load_known_failures(path: str) -> list[KnownFailure]:
    """Read a known-failure file: TOML (``.toml``) or text; raises ``pytest.UsageError``."""
    where = f"--amdgpu-known-failures {path}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise pytest.UsageError(f"{where}: cannot read the file: {exc.strerror}") from None
    if path.endswith(".toml"):
        return _load_toml(path, data, where)
    out = []
    for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 2)
        if len(parts) < 3:
            raise pytest.UsageError(
                f"{where}, line {lineno}: {line.strip()!r} needs three fields; accepted "
                "values: '<test id pattern> <target pattern>[@<backend pattern>] <reason>'")
        target, _, backend = parts[1].partition("@")
        out.append(KnownFailure(parts[0], target, parts[2].strip(), backend or "*",
                                f"{path}:{lineno}"))
    return out


def _load_toml(path: str, data: bytes, where: str) -> list[KnownFailure]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise pytest.UsageError(f"{where}: reading TOML needs Python >= 3.11 or tomli; "
                                    "use the text format instead") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"{where}: not valid TOML: {exc}") from None
    entries = doc.get("known_failure", [])
    if not isinstance(entries, list):
        raise pytest.UsageError(f"{where}: 'known_failure' must be an array of tables "
                                "([[known_failure]])")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("test"), str) \
                or not isinstance(e.get("reason"), str) or not e["reason"].strip():
            raise pytest.UsageError(
                f"{where}: entry {i + 1} needs test = \"pattern\" and reason = \"why\"; accepted "
                "keys: test, target (default \"*\"), backend (default \"*\"), reason")
        extra = set(e) - {"test", "target", "backend", "reason"}
        if extra:
            raise pytest.UsageError(f"{where}: entry {i + 1} has unknown keys {sorted(extra)}; "
                                    "accepted keys: test, target, backend, reason")
        out.append(KnownFailure(e["test"], str(e.get("target", "*")), e["reason"].strip(),
                                str(e.get("backend", "*")), f"{path} entry {i + 1}"))
    return out
