"""The code object metadata: the msgpack map in the NT_AMDGPU_METADATA note (code object v3+).

Keys and value kinds: LLVM AMDGPUUsage "Code Object V3/V4/V5 Metadata" and
AMDGPUHSAMetadataStreamer (facts-sdma-aql-codeobj.md §5.1-5.2). Every key of the note is kept
(`raw`); the documented ones are also typed attributes. Tests compare against llvm-readobj-19's
dump of the same note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgpack

from ..errors import CodeObjectError

EXPLICIT_VALUE_KINDS = frozenset({
    "by_value", "global_buffer", "dynamic_shared_pointer", "sampler", "image", "pipe", "queue",
})
HIDDEN_VALUE_KINDS = frozenset({
    # code object v3/v4 (and v5)
    "hidden_global_offset_x", "hidden_global_offset_y", "hidden_global_offset_z",
    "hidden_none", "hidden_printf_buffer", "hidden_hostcall_buffer", "hidden_default_queue",
    "hidden_completion_action", "hidden_multigrid_sync_arg",
    # code object v5+
    "hidden_heap_v1", "hidden_block_count_x", "hidden_block_count_y", "hidden_block_count_z",
    "hidden_group_size_x", "hidden_group_size_y", "hidden_group_size_z",
    "hidden_remainder_x", "hidden_remainder_y", "hidden_remainder_z", "hidden_grid_dims",
    "hidden_private_base", "hidden_shared_base", "hidden_queue_ptr", "hidden_dynamic_lds_size",
})
ADDRESS_SPACES = frozenset({"private", "global", "constant", "local", "generic", "region"})
ACCESS_QUALIFIERS = frozenset({"read_only", "write_only", "read_write"})


@dataclass(frozen=True)
class KernelArg:
    """One entry of a kernel's `.args` (explicit or hidden)."""

    index: int
    offset: int
    size: int
    value_kind: str
    name: str | None = None
    type_name: str | None = None
    address_space: str | None = None
    access: str | None = None
    actual_access: str | None = None
    pointee_align: int | None = None
    value_type: str | None = None          # v3 only (deprecated in v4+)
    is_const: bool = False
    is_restrict: bool = False
    is_volatile: bool = False
    is_pipe: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_hidden(self) -> bool:
        return self.value_kind.startswith("hidden_")

    @property
    def label(self) -> str:
        """How errors name this argument: `#2 'out' (float*)`."""
        text = f"#{self.index}"
        if self.name:
            text += f" {self.name!r}"
        if self.type_name:
            text += f" ({self.type_name})"
        return text


@dataclass(frozen=True)
class KernelMetadata:
    """One entry of `amdhsa.kernels`."""

    name: str
    symbol: str
    args: tuple[KernelArg, ...]
    kernarg_segment_size: int
    kernarg_segment_align: int
    group_segment_fixed_size: int
    private_segment_fixed_size: int
    wavefront_size: int
    sgpr_count: int
    vgpr_count: int
    max_flat_workgroup_size: int
    agpr_count: int | None = None
    sgpr_spill_count: int | None = None
    vgpr_spill_count: int | None = None
    language: str | None = None
    language_version: tuple[int, ...] | None = None
    kind: str | None = None
    reqd_workgroup_size: tuple[int, ...] | None = None
    workgroup_size_hint: tuple[int, ...] | None = None
    vec_type_hint: str | None = None
    device_enqueue_symbol: str | None = None
    uses_dynamic_stack: bool | None = None
    workgroup_processor_mode: bool | None = None
    uniform_work_group_size: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def explicit_args(self) -> tuple[KernelArg, ...]:
        return tuple(a for a in self.args if not a.is_hidden)

    @cached_property
    def hidden_args(self) -> tuple[KernelArg, ...]:
        return tuple(a for a in self.args if a.is_hidden)

    @cached_property
    def args_end(self) -> int:
        """First byte after the last argument."""
        return max((a.offset + a.size for a in self.args), default=0)

    def hidden(self, value_kind: str) -> KernelArg | None:
        for a in self.args:
            if a.value_kind == value_kind:
                return a
        return None


@dataclass(frozen=True)
class CodeObjectMetadata:
    version: tuple[int, ...]
    target: str | None
    printf: tuple[str, ...]
    kernels: tuple[KernelMetadata, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)


def _req(d: dict, key: str, where: str, kind: type | tuple[type, ...] = int) -> Any:
    if key not in d:
        raise CodeObjectError(f"{where}: metadata key {key!r} is missing")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise CodeObjectError(f"{where}: metadata key {key!r} = {value!r} has the wrong type")
    return value


def _tuple(value: Any) -> tuple | None:
    return tuple(value) if isinstance(value, list | tuple) else None


def _parse_arg(index: int, d: dict, where: str) -> KernelArg:
    if not isinstance(d, dict):
        raise CodeObjectError(f"{where}: argument #{index} is not a map")
    w = f"{where} argument #{index}"
    kind = _req(d, ".value_kind", w, str)
    if kind not in EXPLICIT_VALUE_KINDS and kind not in HIDDEN_VALUE_KINDS \
            and not kind.startswith("hidden_"):
        raise CodeObjectError(f"{w}: unknown .value_kind {kind!r}")
    space = d.get(".address_space")
    if space is not None and space not in ADDRESS_SPACES:
        raise CodeObjectError(f"{w}: unknown .address_space {space!r}")
    return KernelArg(
        index=index, offset=_req(d, ".offset", w), size=_req(d, ".size", w), value_kind=kind,
        name=d.get(".name"), type_name=d.get(".type_name"), address_space=space,
        access=d.get(".access"), actual_access=d.get(".actual_access"),
        pointee_align=d.get(".pointee_align"), value_type=d.get(".value_type"),
        is_const=bool(d.get(".is_const", False)), is_restrict=bool(d.get(".is_restrict", False)),
        is_volatile=bool(d.get(".is_volatile", False)), is_pipe=bool(d.get(".is_pipe", False)),
        raw=dict(d),
    )


def _parse_kernel(d: dict, where: str) -> KernelMetadata:
    if not isinstance(d, dict):
        raise CodeObjectError(f"{where}: amdhsa.kernels entry is not a map")
    name = _req(d, ".name", where, str)
    w = f"{where} kernel {name!r}"
    args = tuple(_parse_arg(i, a, w) for i, a in enumerate(d.get(".args", [])))
    for a in args:
        if a.size <= 0 or a.offset < 0:
            raise CodeObjectError(f"{w}: argument {a.label} has .size {a.size} "
                                  f".offset {a.offset}")
    return KernelMetadata(
        name=name, symbol=_req(d, ".symbol", w, str), args=args,
        kernarg_segment_size=_req(d, ".kernarg_segment_size", w),
        kernarg_segment_align=_req(d, ".kernarg_segment_align", w),
        group_segment_fixed_size=_req(d, ".group_segment_fixed_size", w),
        private_segment_fixed_size=_req(d, ".private_segment_fixed_size", w),
        wavefront_size=_req(d, ".wavefront_size", w),
        sgpr_count=_req(d, ".sgpr_count", w), vgpr_count=_req(d, ".vgpr_count", w),
        max_flat_workgroup_size=_req(d, ".max_flat_workgroup_size", w),
        agpr_count=d.get(".agpr_count"), sgpr_spill_count=d.get(".sgpr_spill_count"),
        vgpr_spill_count=d.get(".vgpr_spill_count"), language=d.get(".language"),
        language_version=_tuple(d.get(".language_version")), kind=d.get(".kind"),
        reqd_workgroup_size=_tuple(d.get(".reqd_workgroup_size")),
        workgroup_size_hint=_tuple(d.get(".workgroup_size_hint")),
        vec_type_hint=d.get(".vec_type_hint"),
        device_enqueue_symbol=d.get(".device_enqueue_symbol"),
        uses_dynamic_stack=d.get(".uses_dynamic_stack"),
        workgroup_processor_mode=d.get(".workgroup_processor_mode"),
        uniform_work_group_size=d.get(".uniform_work_group_size"),
        raw=dict(d),
    )


def parse_metadata(blob: bytes, where: str = "code object") -> CodeObjectMetadata:
    """Parse the NT_AMDGPU_METADATA msgpack blob."""
    try:
        root = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise CodeObjectError(f"{where}: NT_AMDGPU_METADATA is not valid msgpack: {exc}") from exc
    if not isinstance(root, dict):
        raise CodeObjectError(f"{where}: NT_AMDGPU_METADATA is not a msgpack map")
    version = _tuple(root.get("amdhsa.version"))
    if not version or version[0] != 1:
        raise CodeObjectError(f"{where}: amdhsa.version {root.get('amdhsa.version')!r} is not "
                              "1.x (code object v3+ metadata)")
    kernels = tuple(_parse_kernel(k, where) for k in root.get("amdhsa.kernels", []))
    return CodeObjectMetadata(version=version, target=root.get("amdhsa.target"),
                              printf=tuple(root.get("amdhsa.printf", ())), kernels=kernels,
                              raw=root)
