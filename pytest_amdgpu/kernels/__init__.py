"""Conformance kernels and the OpenCL C corpus: sources and prebuilt code objects per target.

- `names()`: the conformance kernels (`src/*.s` assembly with per-family blocks, `src/*.cl`);
  `corpus_names()`: the corpus of OpenCL C compute kernels (`corpus/*.cl`, with numpy
  references and argument recipes in `pytest_amdgpu.kernels.corpus.cases`).
- `path(name, target)`: the prebuilt code object `prebuilt/<target>/<name>.co` (corpus:
  `corpus/prebuilt/<target>/<name>.co`), built by ``python -m pytest_amdgpu.kernels.build``
  with LLVM 19. Each code object holds one kernel called `name`.
- `load(name, target)`: the parsed `CodeObject` (cached).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..errors import UsageError

__all__ = ["KERNELS_DIR", "TARGETS", "all_names", "corpus_names", "is_kernel_name", "load",
           "names", "path", "source"]

KERNELS_DIR = Path(__file__).resolve().parent
SRC_DIR = KERNELS_DIR / "src"
CORPUS_DIR = KERNELS_DIR / "corpus"
PREBUILT_DIR = KERNELS_DIR / "prebuilt"
CORPUS_PREBUILT_DIR = CORPUS_DIR / "prebuilt"
TARGETS = ("gfx90a", "gfx942", "gfx1100")
SOURCE_SUFFIXES = (".s", ".cl")


def _stems(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.iterdir() if p.suffix in SOURCE_SUFFIXES)


def names() -> list[str]:
    """Names of the conformance kernels."""
    return _stems(SRC_DIR)


def corpus_names() -> list[str]:
    """Names of the OpenCL C corpus kernels."""
    return _stems(CORPUS_DIR)


def all_names() -> list[str]:
    return sorted(set(names()) | set(corpus_names()))


def is_kernel_name(name: object) -> bool:
    return isinstance(name, str) and name in all_names()


def source(name: str) -> Path:
    """The source file of kernel `name`."""
    for directory in (SRC_DIR, CORPUS_DIR):
        for suffix in SOURCE_SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    raise UsageError(f"no kernel named {name!r}; conformance kernels: {', '.join(names())}; "
                     f"corpus: {', '.join(corpus_names())}")


def _target_name(target) -> str:
    name = getattr(target, "name", target)
    if not isinstance(name, str):
        raise UsageError(f"target must be a name like 'gfx942' or a Target, got {target!r}")
    return name.split(":")[0]


def path(name: str, target) -> Path:
    """The prebuilt code object of kernel `name` for `target` (name or Target)."""
    src = source(name)
    t = _target_name(target)
    if t not in TARGETS:
        raise UsageError(f"no prebuilt kernels for {t}; prebuilt targets: {', '.join(TARGETS)}")
    base = CORPUS_PREBUILT_DIR if src.parent == CORPUS_DIR else PREBUILT_DIR
    co = base / t / f"{name}.co"
    if not co.is_file():
        raise UsageError(f"{co} is missing: run `python -m pytest_amdgpu.kernels.build` "
                         "(needs LLVM 19: clang-19, llvm-mc-19, ld.lld-19)")
    return co


@cache
def _load(name: str, target: str):
    from ..codeobj import load_code_object

    return load_code_object(path(name, target))


def load(name: str, target):
    """The parsed CodeObject of kernel `name` for `target` (cached; treat it as read-only)."""
    return _load(name, _target_name(target))
