"""The shipped code objects are exactly what LLVM 19 builds from the shipped sources.

Without LLVM the manifest still proves the prebuilt files belong to the current sources; with
LLVM 19 (CI installs it) every kernel is rebuilt and compared byte for byte (or, if the local
LLVM 19 is another patch release than the one recorded, by loadable content)."""

from __future__ import annotations

import hashlib
import json

import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import load_code_object
from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.kernels import build
from pytest_amdgpu.targets import get_target


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(build.MANIFEST.read_text())


def test_manifest_matches_sources_and_files(manifest):
    expected = {job.output for job in build.jobs()}
    assert set(manifest["files"]) == expected, "run python -m pytest_amdgpu.kernels.build"
    for rel, entry in manifest["files"].items():
        path = kernels.KERNELS_DIR / rel
        assert _sha(path.read_bytes()) == entry["sha256"], f"{rel} changed after the build"
        source = kernels.KERNELS_DIR / entry["source"]
        assert _sha(source.read_bytes()) == entry["source_sha256"], (
            f"{entry['source']} changed since {rel} was built: run "
            "python -m pytest_amdgpu.kernels.build")
    for header, digest in manifest["headers"].items():
        assert _sha((kernels.SRC_DIR / header).read_bytes()) == digest
    assert all("19." in v for v in manifest["llvm"].values()), manifest["llvm"]


def test_every_kernel_for_every_target():
    for target in kernels.TARGETS:
        for name in kernels.all_names():
            co = load_code_object(kernels.path(name, target))
            assert co.processor == target and list(co.kernels) == [name]


def _loadable(data: bytes) -> tuple:
    co = load_code_object(data)
    return (co.e_flags, [(s.vaddr, s.memsz, s.flags, s.data) for s in co.segments],
            sorted((s.name, s.value, s.size) for s in co.symbols.values()),
            [(r.offset, r.type, r.addend) for r in co.relocations], co.metadata.raw)


@pytest.mark.skipif(not build.have_llvm(), reason="LLVM 19 (clang-19, llvm-mc-19, ld.lld-19) "
                    "is not installed; CI installs it")
def test_rebuild_matches_prebuilt(manifest):
    fresh = build.build_all()
    assert set(fresh) == set(manifest["files"])
    same_llvm = build.llvm_versions() == manifest["llvm"]
    for rel, data in sorted(fresh.items()):
        shipped = (kernels.KERNELS_DIR / rel).read_bytes()
        if same_llvm:
            assert data == shipped, f"{rel}: a fresh build differs; rerun the build and commit"
        else:
            assert _loadable(data) == _loadable(shipped), rel


def test_registry():
    assert {"empty", "write_value", "copy", "fill_id", "trap", "illegal", "infinite_loop",
            "oob_store", "memtime", "atomic_counter", "lds_barrier", "wait_flag", "scratch",
            "relocated"} <= set(kernels.names())
    assert "saxpy" in kernels.corpus_names() and not set(kernels.names()) & set(
        kernels.corpus_names())
    assert kernels.path("copy", "gfx942").name == "copy.co"
    assert kernels.path("saxpy", get_target("gfx1100")).parent.name == "gfx1100"
    with pytest.raises(UsageError, match="no kernel named 'nope'"):
        kernels.path("nope", "gfx942")
    with pytest.raises(UsageError, match="no prebuilt kernels for gfx1030"):
        kernels.path("copy", "gfx1030")
