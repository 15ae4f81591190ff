"""Which instructions the shader core executes, per target and encoding format.

`coverage(target)` compiles every opcode of the target's table (one canonical encoding each)
and sorts the mnemonics into implemented and not implemented; an instruction the core does not
implement raises an illegal-instruction ShaderException when a wave reaches it.

    python -m pytest_amdgpu.sim.shader.coverage [gfx90a gfx942 gfx1100] [--list]
"""

from __future__ import annotations

import sys

from ...targets.table import get_target
from .core import ShaderCore
from .errors import ShaderException
from .valu import Ctx


def _words(family: str, fmt: str, op: int) -> list[int]:
    """A canonical encoding of opcode `op` (VGPR / SGPR operands, no modifiers)."""
    v3 = [0x100 | 0x101 << 9 | 0x102 << 18]
    if fmt == "SOP2":
        return [0x80000000 | op << 23 | 2 << 8 | 4]
    if fmt == "SOPK":
        return [0xB0000000 | op << 23 | 4 << 16]
    if fmt == "SOP1":
        return [0xBE800000 | 4 << 16 | op << 8 | 2]
    if fmt == "SOPC":
        return [0xBF000000 | op << 16 | 2 << 8 | 4]
    if fmt == "SOPP":
        return [0xBF800000 | op << 16]
    if fmt == "VOP2":
        return [op << 25 | 1 << 17 | 2 << 9 | 0x100, 0]
    if fmt == "VOP1":
        return [0x7E000000 | 1 << 17 | op << 9 | 0x100, 0]
    if fmt == "VOPC":
        return [0x7C000000 | op << 17 | 2 << 9 | 0x100, 0]
    if family == "gfx9":
        if fmt == "SMEM":
            return [0xC0000000 | op << 18 | 1 << 17 | 4 << 6 | 1, 0]
        if fmt == "VOP3":
            return [0xD0000000 | op << 16 | 4, *v3]
        if fmt == "VOP3P":
            return [0xD3800000 | op << 16 | 1 << 14 | 4, 3 << 27 | v3[0]]
        if fmt == "DS":
            return [0xD8000000 | op << 17, 0x04020100]
        seg = {"FLAT": 0, "SCRATCH": 1, "GLOBAL": 2}.get(fmt)
        if seg is not None:
            return [0xDC000000 | op << 18 | seg << 14, 0x047F0200]
        if fmt == "MUBUF":
            return [0xE0000000 | op << 18 | 1 << 12, 0x00000201]
    else:
        if fmt == "SMEM":
            return [0xF4000000 | op << 18 | 4 << 6 | 1, 0xF8000000]
        if fmt == "VOP3":
            return [0xD4000000 | op << 16 | 4, *v3]
        if fmt == "VOP3P":
            return [0xCC000000 | op << 16 | 1 << 14 | 4, 3 << 27 | v3[0]]
        if fmt == "VOPD":
            return [0xC8000000 | (op >> 5) << 22 | (op & 31) << 17 | 2 << 9 | 0x100, 0x04000000 | 6 << 9 | 0x103, 0]
        if fmt == "DS":
            return [0xD8000000 | op << 18, 0x04020100]
        seg = {"FLAT": 0, "SCRATCH": 1, "GLOBAL": 2}.get(fmt)
        if seg is not None:
            return [0xDC000000 | op << 18 | seg << 16, 0x047C0200]
        if fmt == "MUBUF":
            return [0xE0000000 | op << 18, 0x00400201]
    return []


def coverage(target: str) -> dict[str, tuple[list[str], list[str]]]:
    """{format: (implemented mnemonics, unimplemented mnemonics)}."""
    t = get_target(target)
    core = ShaderCore(t)
    ctx = Ctx(t, t.wave_size)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for fmt, ops in core.decoder.table.items():
        yes: list[str] = []
        no: list[str] = []
        for op in sorted(ops):
            words = _words(t.family, fmt, op)
            if not words:
                continue
            try:
                inst = core.decoder.decode(lambda a, w=words: w[a // 4] if a // 4 < len(w) else 0, 0)
                fn = core.compile(inst, ctx)
            except ShaderException:
                continue
            name = inst.name
            (no if getattr(fn, "unimplemented", None) else yes).append(name)
        out[fmt] = (sorted(set(yes)), sorted(set(no) - set(yes)))
    return out


def main(argv: list[str]) -> int:
    listing = "--list" in argv
    targets = [a for a in argv if not a.startswith("-")] or ["gfx90a", "gfx942", "gfx1100"]
    for tname in targets:
        cov = coverage(tname)
        total_y = sum(len(y) for y, _ in cov.values())
        total = total_y + sum(len(n) for _, n in cov.values())
        print(f"{tname}: {total_y}/{total} mnemonics implemented")
        for fmt, (yes, no) in cov.items():
            print(f"  {fmt:8} {len(yes):4d}/{len(yes) + len(no):<4d}")
            if listing:
                print("     implemented:", " ".join(yes))
                print("     missing:    ", " ".join(no))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
