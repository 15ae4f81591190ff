"""`load_code_object`: an HSA code object (v3-v6) read into kernels a loader can place anywhere.

A `CodeObject` holds the ELF facts (target id, PT_LOAD segments, symbols, dynamic
relocations), the metadata note, and per kernel a `KernelInfo` joining the metadata entry with
the 64-byte kernel descriptor found at its `.kd` symbol.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import CodeObjectError
from .descriptor import KD_ALIGN, KD_SIZE, KernelDescriptor
from .elf import (
    GENERIC_MEMBERS,
    NT_AMDGPU_METADATA,
    ElfImage,
    Segment,
    Symbol,
    TargetId,
    apply_relocations,
)
from .metadata import CodeObjectMetadata, KernelArg, KernelMetadata, parse_metadata

CODE_ENTRY_ALIGN = 256     # COMPUTE_PGM_LO holds address bits [39:8]


@dataclass
class KernelInfo:
    """One kernel: metadata entry + kernel descriptor + where both sit in the image."""

    name: str
    descriptor: KernelDescriptor
    kd_offset: int                       # image-relative address of the kernel descriptor
    metadata: KernelMetadata | None
    code_object: CodeObject = field(repr=False)

    @property
    def entry_offset(self) -> int:
        """Image-relative address of the first instruction (KD + signed entry offset)."""
        return self.kd_offset + self.descriptor.kernel_code_entry_byte_offset

    @property
    def symbol(self) -> str:
        return self.metadata.symbol if self.metadata else self.name + ".kd"

    @property
    def args(self) -> tuple[KernelArg, ...]:
        return self.metadata.args if self.metadata else ()

    @property
    def explicit_args(self) -> tuple[KernelArg, ...]:
        return self.metadata.explicit_args if self.metadata else ()

    @property
    def kernarg_size(self) -> int:
        """Bytes of kernarg memory the kernel reads (max of descriptor and metadata)."""
        md = self.metadata.kernarg_segment_size if self.metadata else 0
        return max(self.descriptor.kernarg_size, md)

    @property
    def kernarg_align(self) -> int:
        align = self.metadata.kernarg_segment_align if self.metadata else 16
        return max(16, align)

    @property
    def group_segment_size(self) -> int:
        """Static LDS bytes per work-group."""
        return self.descriptor.group_segment_fixed_size

    @property
    def private_segment_size(self) -> int:
        """Static scratch bytes per work-item."""
        return self.descriptor.private_segment_fixed_size

    @property
    def wavefront_size(self) -> int:
        return self.descriptor.wavefront_size

    @property
    def uses_dynamic_stack(self) -> bool:
        return self.descriptor.has("USES_DYNAMIC_STACK") or bool(
            self.metadata and self.metadata.uses_dynamic_stack)

    @property
    def needs_scratch(self) -> bool:
        return self.descriptor.uses_private_segment


class CodeObject:
    """A parsed code object. `kernels[name] -> KernelInfo`."""

    def __init__(self, data: bytes, *, name: str = "<bytes>") -> None:
        self.name = name
        self.data = bytes(data)
        self.elf = ElfImage(self.data, name=name)
        self.code_object_version = self.elf.header.code_object_version
        self.target_id: TargetId = self.elf.target_id
        self.metadata: CodeObjectMetadata | None = None
        if any(n.owner == "AMDGPU" and n.type == NT_AMDGPU_METADATA for n in self.elf.notes):
            self.metadata = parse_metadata(self.elf.metadata_note(), name)
        self.kernels: dict[str, KernelInfo] = self._find_kernels()

    # -- ELF facts -------------------------------------------------------------------------
    @property
    def segments(self) -> list[Segment]:
        return self.elf.segments

    @property
    def symbols(self) -> dict[str, Symbol]:
        return self.elf.symbols

    @property
    def relocations(self):
        return self.elf.relocations

    @property
    def e_flags(self) -> int:
        return self.elf.header.e_flags

    @property
    def processor(self) -> str:
        return self.target_id.processor

    @property
    def image_size(self) -> int:
        return self.elf.image_size

    @property
    def image_align(self) -> int:
        return self.elf.image_align

    @property
    def has_writable_segment(self) -> bool:
        return any(s.writable and s.memsz for s in self.segments)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def image(self, base: int = 0) -> bytes:
        """The loaded image for GPU address `base`: segments placed and zero-filled, dynamic
        relocations applied. `base` must keep the segments' alignment."""
        if base % self.image_align:
            raise CodeObjectError(f"{self.name}: load address {base:#x} is not aligned to the "
                                  f"image alignment {self.image_align:#x}")
        img = self.elf.image_bytes()
        apply_relocations(img, self.elf.relocations, base, name=self.name)
        return bytes(img)

    # -- kernels ---------------------------------------------------------------------------
    def _read_kd(self, kd_name: str, where: str) -> tuple[int, KernelDescriptor]:
        sym = self.symbols.get(kd_name)
        if sym is None:
            raise CodeObjectError(f"{self.name}: {where}: symbol {kd_name!r} (the kernel "
                                  "descriptor) is not in the symbol table")
        if sym.value % KD_ALIGN:
            raise CodeObjectError(f"{self.name}: kernel descriptor {kd_name} at "
                                  f"{sym.value:#x} is not {KD_ALIGN}-byte aligned")
        if sym.size not in (0, KD_SIZE):
            raise CodeObjectError(f"{self.name}: kernel descriptor {kd_name} is {sym.size} "
                                  f"bytes; the AMDHSA descriptor is {KD_SIZE}")
        for seg in self.segments:
            if seg.vaddr <= sym.value and sym.value + KD_SIZE <= seg.vaddr + seg.filesz:
                raw = seg.data[sym.value - seg.vaddr:sym.value - seg.vaddr + KD_SIZE]
                return sym.value, KernelDescriptor.from_bytes(raw, self.processor)
        raise CodeObjectError(f"{self.name}: kernel descriptor {kd_name} at {sym.value:#x} "
                              "lies outside every PT_LOAD segment")

    def _find_kernels(self) -> dict[str, KernelInfo]:
        kernels: dict[str, KernelInfo] = {}
        if self.metadata is not None:
            for md in self.metadata.kernels:
                kd_offset, kd = self._read_kd(md.symbol, f"kernel {md.name!r}")
                kernels[md.name] = KernelInfo(md.name, kd, kd_offset, md, self)
        else:
            for sym in self.symbols.values():
                if sym.name.endswith(".kd") and sym.type == "STT_OBJECT":
                    kd_offset, kd = self._read_kd(sym.name, "descriptor symbol")
                    name = sym.name[:-3]
                    kernels[name] = KernelInfo(name, kd, kd_offset, None, self)
        for k in kernels.values():
            self._check_kernel(k)
        return kernels

    def _check_kernel(self, k: KernelInfo) -> None:
        where = f"{self.name}: kernel {k.name!r}"
        k.descriptor.validate(k.name)
        entry = k.entry_offset
        if entry % CODE_ENTRY_ALIGN:
            raise CodeObjectError(f"{where}: code entry {entry:#x} (KD {k.kd_offset:#x} + "
                                  f"{k.descriptor.kernel_code_entry_byte_offset:#x}) is not "
                                  f"{CODE_ENTRY_ALIGN}-byte aligned; COMPUTE_PGM_LO cannot "
                                  "address it")
        if not any(s.executable and s.vaddr <= entry < s.vaddr + s.memsz for s in self.segments):
            raise CodeObjectError(f"{where}: code entry {entry:#x} is not inside an executable "
                                  "PT_LOAD segment")
        md = k.metadata
        if md is not None and md.wavefront_size != k.descriptor.wavefront_size:
            raise CodeObjectError(f"{where}: metadata .wavefront_size {md.wavefront_size} "
                                  "disagrees with kernel_code_properties "
                                  f"ENABLE_WAVEFRONT_SIZE32 (wave{k.descriptor.wavefront_size})")

    def kernel(self, name: str) -> KernelInfo:
        """The kernel called `name` (a trailing ".kd" is accepted); the error lists the rest."""
        if name.endswith(".kd") and name[:-3] in self.kernels:
            name = name[:-3]
        try:
            return self.kernels[name]
        except KeyError:
            known = ", ".join(sorted(self.kernels)) or "none"
            raise CodeObjectError(f"{self.name}: no kernel {name!r}; kernels here: "
                                  f"{known}") from None

    # -- target checks ---------------------------------------------------------------------
    def check_target(self, target, *, xnack: str | None = None,
                     sramecc: str | None = None) -> None:
        """Refuse (CodeObjectError) if this code object cannot run on `target`.

        `target` is a `targets.Target`, a target-id string ("gfx942:xnack-") or a TargetId.
        `xnack`/`sramecc` give the device's mode ("on"/"off") when known; a code object built
        for "any" runs in both modes, "on"/"off" needs the same mode, and a setting on a
        processor without the feature is refused.
        """
        processor, t_xnack, t_sramecc, supports = _target_facts(target)
        if xnack is not None:
            t_xnack = xnack
        if sramecc is not None:
            t_sramecc = sramecc
        co = self.target_id
        fix = f"rebuild it with -mcpu={processor}"
        if co.processor != processor:
            members = GENERIC_MEMBERS.get(co.processor, ())
            if processor not in members:
                raise CodeObjectError(
                    f"{self.name}: code object is for {co} but the device is {processor}: "
                    f"{fix} (pytest_amdgpu.kernels.path(name, {processor!r}) gives prebuilt "
                    "kernels per target)")
            if co.generic_version < 1:
                raise CodeObjectError(f"{self.name}: generic code object for {co.processor} "
                                      "has EF_AMDGPU_GENERIC_VERSION 0 (invalid)")
        for feature, want, have, supported in (("xnack", co.xnack, t_xnack, supports[0]),
                                               ("sramecc", co.sramecc, t_sramecc, supports[1])):
            if want in ("any", "unsupported"):
                continue
            sign = "+" if want == "on" else "-"
            if supported is False:
                raise CodeObjectError(f"{self.name}: code object requires {feature}{sign} but "
                                      f"{processor} has no {feature} mode: {fix} without "
                                      f":{feature}{sign}")
            if have in ("on", "off") and have != want:
                have_sign = "+" if have == "on" else "-"
                raise CodeObjectError(
                    f"{self.name}: code object is built for {feature}{sign} but the device runs "
                    f"{feature}{have_sign}: rebuild for {processor}:{feature}{have_sign} or "
                    f"without a {feature} setting (\"any\" runs in both modes)")

    def __repr__(self) -> str:
        return (f"CodeObject({self.name!r}, {self.target_id}, v{self.code_object_version}, "
                f"kernels={sorted(self.kernels)})")


def _target_facts(target) -> tuple[str, str, str, tuple[bool | None, bool | None]]:
    """(processor, xnack mode, sramecc mode, (xnack supported?, sramecc supported?))."""
    if isinstance(target, TargetId):
        return target.processor, target.xnack, target.sramecc, (None, None)
    if isinstance(target, str):
        tid = TargetId.parse(target)
        return tid.processor, tid.xnack, tid.sramecc, (None, None)
    name = getattr(target, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"check_target: expected a Target, TargetId or target-id string, got "
                        f"{type(target).__name__}")
    return name, "any", "any", (getattr(target, "xnack_supported", None),
                                getattr(target, "sramecc_supported", None))


def load_code_object(source, *, name: str | None = None) -> CodeObject:
    """Read a code object from a path, bytes, or return a CodeObject unchanged."""
    if isinstance(source, CodeObject):
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CodeObjectError(f"cannot read code object {path}: {exc.strerror}") from exc
        return CodeObject(data, name=name or str(path))
    if isinstance(source, bytes | bytearray | memoryview):
        return CodeObject(bytes(source), name=name or "<bytes>")
    raise TypeError(f"load_code_object: expected a path, bytes or CodeObject, got "
                    f"{type(source).__name__}")
