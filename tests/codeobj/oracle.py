"""The independent oracle: LLVM 19's own tools reading the same files.

llvm-readobj-19 (ELF header, symbols, program headers, relocations, the metadata note as LLVM
renders it) and llvm-objdump-19 (the kernel descriptor disassembled back to `.amdhsa_*`
directives). Tests skip with a reason when the tools are absent; CI installs them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from pytest_amdgpu import kernels

READOBJ = shutil.which("llvm-readobj-19")
OBJDUMP = shutil.which("llvm-objdump-19")
CLANG = shutil.which("clang-19")
LLD = shutil.which("ld.lld-19")
LLVM_MC = shutil.which("llvm-mc-19")

needs_readobj = pytest.mark.skipif(READOBJ is None, reason="llvm-readobj-19 not installed "
                                   "(apt-get install llvm-19)")
needs_objdump = pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 not installed "
                                   "(apt-get install llvm-19)")
needs_clang = pytest.mark.skipif(CLANG is None or LLD is None or LLVM_MC is None,
                                 reason="clang-19 / ld.lld-19 / llvm-mc-19 not installed")


def prebuilt() -> list[tuple[str, str, Path]]:
    """(name, target, path) of every shipped code object."""
    return [(n, t, kernels.path(n, t)) for t in kernels.TARGETS for n in kernels.all_names()]


def prebuilt_ids() -> list[str]:
    return [f"{t}-{n}" for n, t, _ in prebuilt()]


@cache
def readobj(path: str) -> dict:
    """llvm-readobj-19's JSON view of a code object (header, segments, symbols, relocs, notes)."""
    out = subprocess.run([READOBJ, "--file-headers", "--program-headers", "--symbols",
                          "--dyn-symbols", "--relocations", "--notes", "--elf-output-style=JSON",
                          path], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def readobj_metadata(path: str) -> dict:
    """The NT_AMDGPU_METADATA note as llvm-readobj renders it (YAML), parsed."""
    for section in readobj(path).get("NoteSections", []):
        for note in section["NoteSection"]["Notes"]:
            if "AMDGPU Metadata" in note:
                return parse_yaml(note["AMDGPU Metadata"])
    raise AssertionError(f"llvm-readobj shows no AMDGPU metadata note in {path}")


def objdump_descriptor(path: str, kernel: str) -> dict[str, int] | str:
    """`.amdhsa_*` directive -> value, from llvm-objdump-19's disassembly of `<kernel>.kd`;
    a string (the tool's complaint) when it refuses to decode the descriptor."""
    proc = subprocess.run([OBJDUMP, "-D", "-j", ".rodata", path], capture_output=True,
                          text=True)
    text = proc.stdout + proc.stderr
    block = re.search(rf"<{re.escape(kernel)}\.kd>:\n\.amdhsa_kernel {re.escape(kernel)}\n"
                      r"(.*?)\.end_amdhsa_kernel", text, re.S)
    if block is None:
        err = re.search(rf"error decoding {re.escape(kernel)}\.kd: (.*)", text)
        return err.group(1) if err else text
    out = {}
    for line in block.group(1).splitlines():
        m = re.match(r"\s*\.amdhsa_(\w+) (-?\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


# -- a YAML subset parser for llvm-readobj's rendering of the msgpack metadata --------------

def _scalar(text: str):
    text = text.strip()
    if text.startswith("!str "):        # LLVM tags strings YAML would read as bools ("y", "n")
        return text[5:]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"0x[0-9a-fA-F]+", text):
        return int(text, 16)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(x) for x in inner.split(",")] if inner else []
    return text


def parse_yaml(text: str):
    """Parse the block-style YAML llvm-readobj prints for a msgpack document."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() in ("---", "...", ""):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        lines.append((indent, raw.strip()))
    value, pos = _block(lines, 0, lines[0][0])
    assert pos == len(lines), f"unparsed YAML from line {pos}: {lines[pos]}"
    return value


def _split_key(content: str) -> tuple[str, str]:
    key, _, rest = content.partition(":")
    return key.strip(), rest.strip()


def _block(lines, pos, indent):
    if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
        out = []
        while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("-"):
            rest = lines[pos][1][1:].strip()
            if ":" in rest and not rest.startswith(("'", '"', "[")):
                # a mapping starts on the dash line; its keys sit at indent + 2
                lines[pos] = (indent + 2, rest)
                item, pos = _block(lines, pos, indent + 2)
            else:
                item, pos = _scalar(rest), pos + 1
            out.append(item)
        return out, pos
    mapping = {}
    while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
        key, rest = _split_key(lines[pos][1])
        pos += 1
        if rest:
            mapping[key] = _scalar(rest)
        elif pos < len(lines) and lines[pos][0] >= indent and (
                lines[pos][0] > indent or lines[pos][1].startswith("- ")):
            mapping[key], pos = _block(lines, pos, lines[pos][0])
        else:
            mapping[key] = None
    return mapping, pos
