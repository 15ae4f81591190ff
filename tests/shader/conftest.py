"""Fixtures for the shader-core tests: compiled kernels (session-scoped, in a tmp dir)."""

from __future__ import annotations

import pytest

from .harness import KERNELS, CodeObject, compile_cl, have_llvm

TARGETS = ("gfx90a", "gfx942", "gfx1100")

needs_llvm = pytest.mark.skipif(not have_llvm(), reason="clang-19 / ld.lld-19 / llvm-mc-19 not installed "
                                "(apt-get install llvm-19 lld-19 clang-19)")


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("shader-kernels")


@pytest.fixture(scope="session")
def compiled(build_dir):
    """compiled(source_stem, target, extra_flags=()) -> CodeObject of tests/shader/kernels/<stem>.cl."""
    if not have_llvm():
        pytest.skip("clang-19 / ld.lld-19 not installed")
    cache: dict = {}

    def get(stem: str, target: str, extra: tuple[str, ...] = ()) -> CodeObject:
        key = (stem, target, extra)
        if key not in cache:
            out = build_dir
            if extra:
                out = build_dir / "".join(c if c.isalnum() else "_" for c in "".join(extra))
                out.mkdir(exist_ok=True)
            cache[key] = CodeObject(compile_cl(KERNELS / f"{stem}.cl", target, out, extra))
        return cache[key]
    return get
