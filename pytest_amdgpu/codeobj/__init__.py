"""HSA code objects: ELF, metadata, kernel descriptors, kernarg layout.

`load_code_object(path_or_bytes) -> CodeObject`; `CodeObject.kernels[name] -> KernelInfo`;
`CodeObject.check_target(target)` refuses a code object for another target;
`build_kernargs(kernel, args, grid=, block=)` lays out the kernarg segment from the metadata.
"""

from .codeobject import CodeObject, KernelInfo, load_code_object
from .descriptor import KD_SIZE, KernelDescriptor, UserSgpr
from .elf import (
    ELFOSABI_AMDGPU_HSA,
    EM_AMDGPU,
    MACH_BY_NAME,
    MACH_NAMES,
    R_AMDGPU,
    ElfImage,
    Relocation,
    Segment,
    Symbol,
    TargetId,
    apply_relocations,
    decode_e_flags,
    encode_e_flags,
)
from .kernarg import Geometry, Kernargs, LocalMemory, build_kernargs, hidden_values, make_geometry
from .metadata import CodeObjectMetadata, KernelArg, KernelMetadata, parse_metadata

__all__ = [
    "ELFOSABI_AMDGPU_HSA", "EM_AMDGPU", "KD_SIZE", "MACH_BY_NAME", "MACH_NAMES", "R_AMDGPU",
    "CodeObject", "CodeObjectMetadata", "ElfImage", "Geometry", "KernelArg", "KernelDescriptor",
    "KernelInfo", "KernelMetadata", "Kernargs", "LocalMemory", "Relocation", "Segment", "Symbol",
    "TargetId", "UserSgpr", "apply_relocations", "build_kernargs", "decode_e_flags",
    "encode_e_flags", "hidden_values", "load_code_object", "make_geometry", "parse_metadata",
]
