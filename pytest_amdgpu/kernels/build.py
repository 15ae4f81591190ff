"""Build the prebuilt code objects with LLVM 19: ``python -m pytest_amdgpu.kernels.build``.

For every source and target (gfx90a, gfx942, gfx1100):

- ``src/<name>.s``: ``llvm-mc-19 -triple=amdgcn-amd-amdhsa -mcpu=<t> -filetype=obj -I .``
  (the sources ``.include "amdhsa.inc"``, their shared descriptor and metadata macros), then
  ``ld.lld-19 -shared`` into ``prebuilt/<t>/<name>.co``;
- ``src/<name>.cl`` and ``corpus/<name>.cl``: ``clang-19 -x cl -cl-std=CL2.0 -O2 -nogpulib``
  (code object v5, kernel argument info kept in the metadata), then ``ld.lld-19 -shared`` into
  ``prebuilt/<t>/<name>.co`` / ``corpus/prebuilt/<t>/<name>.co``.

Every tool runs in a scratch directory on a copy of the source (plus the headers ``src/ids.h``
and ``src/amdhsa.inc``) with fixed relative file names, so the output does not depend on where
the checkout lives: two builds with the same LLVM give identical bytes. ``manifest.json`` records the LLVM versions, the
commands and the SHA-256 of every source and output. ``--check`` rebuilds into a temporary
directory and compares instead of writing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import CORPUS_DIR, KERNELS_DIR, SRC_DIR, TARGETS

MANIFEST = KERNELS_DIR / "manifest.json"
LLVM_SUFFIX = "-19"
TOOLS = ("clang", "llvm-mc", "ld.lld")
HEADERS = ("ids.h", "amdhsa.inc")
TRIPLE = "amdgcn-amd-amdhsa"
CODE_OBJECT_VERSION = 5


class BuildError(RuntimeError):
    """A tool is missing or failed; the message holds its command and output."""


@dataclass(frozen=True)
class Job:
    name: str
    source: Path            # absolute path of the source
    target: str
    output: str             # path of the .co relative to KERNELS_DIR

    @property
    def kind(self) -> str:
        return self.source.suffix


def tool(name: str) -> str:
    """Absolute path of the LLVM 19 tool `name` (e.g. "clang" -> clang-19)."""
    exe = shutil.which(name + LLVM_SUFFIX)
    if exe is None:
        raise BuildError(f"{name}{LLVM_SUFFIX} not found on PATH: install LLVM 19 "
                         "(apt-get install llvm-19 lld-19 clang-19)")
    return exe


def have_llvm() -> bool:
    return all(shutil.which(t + LLVM_SUFFIX) for t in TOOLS)


def llvm_versions() -> dict[str, str]:
    """First version line of each tool, e.g. {"clang": "Debian clang version 19.1.7 ..."}."""
    out = {}
    for name in TOOLS:
        text = subprocess.run([tool(name), "--version"], capture_output=True, text=True,
                              check=True).stdout
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        out[name] = first
    return out


def assemble_command(target: str, src: str, obj: str) -> list[str]:
    return [tool("llvm-mc"), f"-triple={TRIPLE}", f"-mcpu={target}", "-filetype=obj", "-I", ".",
            src, "-o", obj]


def compile_command(target: str, src: str, obj: str) -> list[str]:
    return [tool("clang"), "-x", "cl", "-cl-std=CL2.0", "-target", TRIPLE, f"-mcpu={target}",
            "-O2", "-nogpulib", "-cl-kernel-arg-info",
            f"-mcode-object-version={CODE_OBJECT_VERSION}", "-I", ".", "-c", src, "-o", obj]


def link_command(obj: str, out: str) -> list[str]:
    return [tool("ld.lld"), "-shared", obj, "-o", out]


def jobs(targets=TARGETS, only=None) -> list[Job]:
    """Every (source, target) pair to build, conformance kernels first."""
    out = []
    for directory, prebuilt in ((SRC_DIR, "prebuilt"), (CORPUS_DIR, "corpus/prebuilt")):
        for src in sorted(directory.iterdir()):
            if src.suffix not in (".s", ".cl"):
                continue
            if only and src.stem not in only:
                continue
            for t in targets:
                out.append(Job(src.stem, src, t, f"{prebuilt}/{t}/{src.stem}.co"))
    return out


def _run(cmd: list[str], cwd: str) -> None:
    env = dict(os.environ, LC_ALL="C", SOURCE_DATE_EPOCH="0")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise BuildError(f"{' '.join(cmd)} (in {cwd}) failed with exit {proc.returncode}:\n"
                         f"{proc.stdout}{proc.stderr}")


def build_one(job: Job) -> bytes:
    """Build one code object and return its bytes."""
    with tempfile.TemporaryDirectory(prefix="amdgpu-kbuild-") as tmp:
        src = job.source.name
        shutil.copyfile(job.source, os.path.join(tmp, src))
        for header in HEADERS:
            h = SRC_DIR / header
            if h.is_file():
                shutil.copyfile(h, os.path.join(tmp, header))
        obj, out = f"{job.name}.o", f"{job.name}.co"
        if job.kind == ".s":
            _run(assemble_command(job.target, src, obj), tmp)
        else:
            _run(compile_command(job.target, src, obj), tmp)
        _run(link_command(obj, out), tmp)
        with open(os.path.join(tmp, out), "rb") as f:
            return f.read()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_all(targets=TARGETS, only=None, *, max_workers: int = 2) -> dict[str, bytes]:
    """Build every job; returns {output path relative to KERNELS_DIR: bytes}."""
    todo = jobs(targets, only)
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        results = list(pool.map(build_one, todo))
    return {job.output: data for job, data in zip(todo, results)}


def manifest(outputs: dict[str, bytes]) -> dict:
    srcs = {j.output: j for j in jobs()}
    files = {}
    for rel, data in sorted(outputs.items()):
        job = srcs[rel]
        files[rel] = {
            "sha256": sha256(data),
            "source": str(job.source.relative_to(KERNELS_DIR)),
            "source_sha256": sha256(job.source.read_bytes()),
        }
    headers = {h: sha256((SRC_DIR / h).read_bytes()) for h in HEADERS if (SRC_DIR / h).is_file()}
    return {
        "llvm": llvm_versions(),
        "commands": {
            ".s": [" ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
                   for cmd in (assemble_command("<target>", "<name>.s", "<name>.o"),
                               link_command("<name>.o", "<name>.co"))],
            ".cl": [" ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
                    for cmd in (compile_command("<target>", "<name>.cl", "<name>.o"),
                                link_command("<name>.o", "<name>.co"))],
        },
        "headers": headers,
        "files": files,
    }


def write(outputs: dict[str, bytes]) -> None:
    for rel, data in outputs.items():
        dest = KERNELS_DIR / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_file() or dest.read_bytes() != data:
            dest.write_bytes(data)
    full = len(outputs) == len(jobs())
    if full:
        MANIFEST.write_text(json.dumps(manifest(outputs), indent=1, sort_keys=True) + "\n")


def compare(outputs: dict[str, bytes]) -> list[str]:
    """Differences between fresh outputs and the committed prebuilt files."""
    problems = []
    for rel, data in sorted(outputs.items()):
        dest = KERNELS_DIR / rel
        if not dest.is_file():
            problems.append(f"{rel}: missing")
        elif dest.read_bytes() != data:
            problems.append(f"{rel}: differs from a fresh build (sha256 {sha256(data)[:16]} "
                            f"fresh, {sha256(dest.read_bytes())[:16]} committed)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_amdgpu.kernels.build",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temporary directory and compare with the prebuilt "
                             "files; exit 1 on any difference")
    parser.add_argument("--target", action="append", choices=TARGETS,
                        help="build only this target (repeatable)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="build only this kernel (repeatable)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    ns = parser.parse_args(argv)
    targets = tuple(ns.target) if ns.target else TARGETS
    try:
        outputs = build_all(targets, ns.only, max_workers=ns.jobs)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 2
    if ns.check:
        problems = compare(outputs)
        for p in problems:
            print(p)
        print(f"{len(outputs)} code objects checked, {len(problems)} differ")
        return 1 if problems else 0
    write(outputs)
    print(f"{len(outputs)} code objects written under {KERNELS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
