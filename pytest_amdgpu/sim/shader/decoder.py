"""Instruction decoding for the GFX9 (gfx90a, gfx942) and GFX11 (gfx1100) encodings.

`Decoder(target).decode(fetch, pc)` reads the dwords of one instruction through `fetch` and
returns an `Inst`: the format, opcode, mnemonic exactly as llvm-objdump prints it, the raw
fields, any literal constant and the DPP / SDWA control word.  Formats and bit positions are
from the AMD "Vega"/"CDNA3" and "RDNA3" ISA reference guides, each confirmed with
`llvm-mc-19 -show-encoding`; opcode numbers and mnemonics come from the generated
optables.py (observed from llvm-mc-19 --disassemble).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from ...targets.table import get_target
from .errors import ShaderException

# 9-bit source operand encodings (both families).
SRC_VCC_LO = 106
SRC_M0_GFX9 = 124      # gfx11 swapped M0 and NULL: M0 = 125, NULL = 124
SRC_M0_GFX11 = 125
SRC_NULL_GFX11 = 124
SRC_EXEC_LO = 126
SRC_LITERAL = 255
SRC_DPP16 = 250         # 0xFA
SRC_SDWA = 249          # 0xF9 (gfx9)
SRC_DPP8 = 233          # 0xE9 (gfx11)
SRC_DPP8_FI = 234       # 0xEA (gfx11, fetch inactive)

VOP_SUFFIXES = ("_e32", "_e64", "_sdwa", "_dpp", "_e64_dpp")


@dataclass(slots=True)
class Inst:
    """One decoded instruction."""

    pc: int
    size: int
    words: tuple[int, ...]
    fmt: str                 # SOP1 SOP2 SOPK SOPC SOPP SMEM VOP1 VOP2 VOPC VOP3 VOP3P VOPD DS FLAT GLOBAL SCRATCH MUBUF
    op: int
    name: str                # mnemonic as llvm-objdump prints it
    base: str                # semantic name: the mnemonic without _e32/_e64/_sdwa/_dpp
    f: dict[str, int]        # raw encoding fields
    operands: tuple          # operand layout from the opcode table
    literal: int | None = None
    ext: str = ""            # "", "sdwa", "dpp", "dpp8": the VOP extension in use
    ext_word: int = 0        # the SDWA / DPP control dword
    extra: dict = field(default_factory=dict)

    @property
    def encoding(self) -> str:
        return " ".join(f"{w:08X}" for w in self.words)


NAMED_SECTIONS = ("SENDMSG", "SENDMSG_RTN", "HWREG")   # optables sections that are not formats


@cache
def stored_tables(target: str) -> dict[str, dict[int, object]]:
    """The sections of optables.GROUPS that name `target`, merged (VOPD still as VOPDX/VOPDY)."""
    from .optables import GROUPS
    out: dict[str, dict[int, object]] = {}
    for targets, sections in GROUPS.items():
        if target in targets:
            for sec, entries in sections.items():
                out.setdefault(sec, {}).update(entries)
    if not out:
        raise ValueError(f"no opcode tables for target {target!r} (optables.py covers "
                         f"{sorted({t for ts in GROUPS for t in ts})}; extend gen_optables.TARGETS)")
    return {sec: dict(sorted(entries.items())) for sec, entries in sorted(out.items())}


def compose_vopd(xs: dict[int, tuple], ys: dict[int, tuple]) -> dict[int, tuple]:
    """VOPD opcode opx << 5 | opy -> ("x_name::y_name", X operands, ('::', 0, ''), Y operands)."""
    return {opx << 5 | opy: (f"{xn}::{yn}", (*xo, ("::", 0, ""), *yo))
            for opx, (xn, xo) in xs.items() for opy, (yn, yo) in ys.items()}


@cache
def opcode_tables(target: str) -> dict[str, dict[int, object]]:
    """Every table of `target`: formats (VOPD composed from its halves) and NAMED_SECTIONS."""
    out = dict(stored_tables(target))
    if "VOPDX" in out:
        out["VOPD"] = compose_vopd(out.pop("VOPDX"), out.pop("VOPDY"))
    return out


def base_name(name: str) -> str:
    for suf in ("_e64_dpp", "_e32", "_e64", "_sdwa", "_dpp"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def _sx(v: int, bits: int) -> int:
    m = 1 << (bits - 1)
    return (v & (m - 1)) - (v & m)


class Decoder:
    """Decodes the machine code of one target (tables are per target, formats per family)."""

    def __init__(self, target: str, family: str | None = None):
        self.target = target
        self.family = family or get_target(target).family
        tables = opcode_tables(target)
        self.table = {fmt: ops for fmt, ops in tables.items() if fmt not in NAMED_SECTIONS}
        self.gfx11 = self.family == "gfx11"
        # literal-carrying VOP2 forms (madmk/madak/fmamk/fmaak) and SOPK imm32 forms
        self._always_literal = {
            (fmt, op) for fmt in ("VOP2", "SOPK", "VOPD")
            for op, ent in self.table.get(fmt, {}).items()
            if any(o[0] == "literal" for o in ent[1])
        }

    # -----------------------------------------------------------------------------------------
    def format_of(self, w0: int) -> str:
        if w0 >> 31 == 0:
            top7 = w0 >> 25
            if top7 == 0x3E:
                return "VOPC"
            if top7 == 0x3F:
                return "VOP1"
            return "VOP2"
        if w0 >> 30 == 0b10:
            top9 = w0 >> 23
            if top9 == 0x17D:
                return "SOP1"
            if top9 == 0x17E:
                return "SOPC"
            if top9 == 0x17F:
                return "SOPP"
            if w0 >> 28 == 0b1011:
                return "SOPK"
            return "SOP2"
        top6 = w0 >> 26
        if self.gfx11:
            return {0x3D: "SMEM", 0x35: "VOP3", 0x33: "VOP3P", 0x32: "VOPD", 0x36: "DS",
                    0x37: "FLAT", 0x38: "MUBUF", 0x3A: "MTBUF", 0x3C: "MIMG", 0x3E: "EXP"}.get(top6, "?")
        if top6 == 0x34:
            return "VOP3P" if (w0 >> 23) == 0x1A7 else "VOP3"
        return {0x30: "SMEM", 0x36: "DS", 0x37: "FLAT", 0x38: "MUBUF", 0x3A: "MTBUF",
                0x3C: "MIMG", 0x31: "EXP", 0x32: "VINTRP"}.get(top6, "?")

    def illegal(self, pc: int, words: tuple[int, ...], msg: str, mnemonic: str = "<unknown>") -> ShaderException:
        enc = " ".join(f"{w:08X}" for w in words)
        return ShaderException("illegal_instruction", pc=pc, mnemonic=mnemonic, encoding=enc,
                               message=f"{msg} at PC 0x{pc:x} (encoding {enc}, target {self.target})")

    # -----------------------------------------------------------------------------------------
    def decode(self, fetch: Callable[[int], int], pc: int) -> Inst:
        """Decode the instruction at `pc`; `fetch(addr)` returns the dword at a code address."""
        w0 = fetch(pc)
        fmt = self.format_of(w0)
        f: dict[str, int] = {}
        if fmt in ("SOP2", "SOPK", "SOP1", "SOPC", "SOPP"):
            if fmt == "SOP2":
                op = (w0 >> 23) & 0x7F
                f = {"sdst": (w0 >> 16) & 0x7F, "ssrc1": (w0 >> 8) & 0xFF, "ssrc0": w0 & 0xFF}
            elif fmt == "SOPK":
                op = (w0 >> 23) & 0x1F
                f = {"sdst": (w0 >> 16) & 0x7F, "simm16": w0 & 0xFFFF}
            elif fmt == "SOP1":
                op = (w0 >> 8) & 0xFF
                f = {"sdst": (w0 >> 16) & 0x7F, "ssrc0": w0 & 0xFF}
            elif fmt == "SOPC":
                op = (w0 >> 16) & 0x7F
                f = {"ssrc1": (w0 >> 8) & 0xFF, "ssrc0": w0 & 0xFF}
            else:
                op = (w0 >> 16) & 0x7F
                f = {"simm16": w0 & 0xFFFF}
            words = [w0]
            lit = None
            if f.get("ssrc0") == SRC_LITERAL or f.get("ssrc1") == SRC_LITERAL or (fmt, op) in self._always_literal:
                lit = fetch(pc + 4)
                words.append(lit)
            return self._finish(pc, fmt, op, f, words, lit)
        if fmt in ("VOP1", "VOP2", "VOPC"):
            if fmt == "VOP2":
                op = (w0 >> 25) & 0x3F
                f = {"vdst": (w0 >> 17) & 0xFF, "vsrc1": (w0 >> 9) & 0xFF, "src0": w0 & 0x1FF}
            elif fmt == "VOP1":
                op = (w0 >> 9) & 0xFF
                f = {"vdst": (w0 >> 17) & 0xFF, "src0": w0 & 0x1FF}
            else:
                op = (w0 >> 17) & 0xFF
                f = {"vsrc1": (w0 >> 9) & 0xFF, "src0": w0 & 0x1FF}
            words = [w0]
            lit = None
            ext = ""
            ext_word = 0
            s0 = f["src0"]
            if s0 == SRC_LITERAL or (fmt, op) in self._always_literal:
                lit = fetch(pc + 4)
                words.append(lit)
            elif s0 == SRC_SDWA and not self.gfx11:
                ext, ext_word = "sdwa", fetch(pc + 4)
                words.append(ext_word)
            elif s0 == SRC_DPP16:
                ext, ext_word = "dpp", fetch(pc + 4)
                words.append(ext_word)
            elif self.gfx11 and s0 in (SRC_DPP8, SRC_DPP8_FI):
                ext, ext_word = "dpp8", fetch(pc + 4)
                words.append(ext_word)
                f["fi8"] = int(s0 == SRC_DPP8_FI)          # DPP8 "fetch inactive"
            inst = self._finish(pc, fmt, op, f, words, lit)
            if ext:
                inst.ext, inst.ext_word = ext, ext_word
                inst.f["src0"] = 0x100 | (ext_word & 0xFF)
                if ext == "sdwa":
                    if ext_word >> 23 & 1:       # S0: src0 is an SGPR / constant
                        inst.f["src0"] = ext_word & 0xFF
                    if fmt != "VOP1" and ext_word >> 31 & 1:
                        inst.f["vsrc1"] |= 0x200      # S1 flag: vsrc1 holds a scalar operand
                stem = base_name(inst.name)
                if self.gfx11 and fmt == "VOPC":
                    inst.name = stem           # LLVM prints GFX11 VOPC DPP without a suffix
                else:
                    inst.name = f"{stem}_{'sdwa' if ext == 'sdwa' else 'dpp'}"
            return inst
        w1 = fetch(pc + 4)
        words = [w0, w1]
        lit = None
        if fmt == "VOP3":
            op = (w0 >> 16) & 0x3FF
            f = {"vdst": w0 & 0xFF, "abs": (w0 >> 8) & 7, "opsel": (w0 >> 11) & 0xF, "clamp": (w0 >> 15) & 1,
                 "sdst": (w0 >> 8) & 0x7F, "src0": w1 & 0x1FF, "src1": (w1 >> 9) & 0x1FF,
                 "src2": (w1 >> 18) & 0x1FF, "omod": (w1 >> 27) & 3, "neg": (w1 >> 29) & 7}
            if not self.gfx11:
                f["acc"] = (w0 >> 15) & 1     # MAI acc_cd / clamp share bit 15
            return self._finish_vop3(fetch, pc, fmt, op, f, words)
        if fmt == "VOP3P":
            op = (w0 >> 16) & 0x7F
            f = {"vdst": w0 & 0xFF, "neg_hi": (w0 >> 8) & 7, "opsel": (w0 >> 11) & 7,
                 "opsel_hi2": (w0 >> 14) & 1, "clamp": (w0 >> 15) & 1,
                 "src0": w1 & 0x1FF, "src1": (w1 >> 9) & 0x1FF, "src2": (w1 >> 18) & 0x1FF,
                 "opsel_hi": (w1 >> 27) & 3, "neg": (w1 >> 29) & 7}
            return self._finish_vop3(fetch, pc, fmt, op, f, words)
        if fmt == "VOPD":
            opx, opy = (w0 >> 22) & 0xF, (w0 >> 17) & 0x1F
            vdstx = (w1 >> 24) & 0xFF
            f = {"src0x": w0 & 0x1FF, "vsrc1x": (w0 >> 9) & 0xFF, "src0y": w1 & 0x1FF,
                 "vsrc1y": (w1 >> 9) & 0xFF, "vdstx": vdstx,
                 "vdsty": ((w1 >> 17) & 0x7F) << 1 | ((vdstx & 1) ^ 1), "opx": opx, "opy": opy}
            op = opx << 5 | opy
            if SRC_LITERAL in (f["src0x"], f["src0y"]) or (fmt, op) in self._always_literal:
                lit = fetch(pc + 8)
                words.append(lit)
            return self._finish(pc, fmt, op, f, words, lit)
        if fmt == "SMEM":
            op = (w0 >> 18) & 0xFF
            if self.gfx11:
                f = {"sdata": (w0 >> 6) & 0x7F, "sbase": (w0 & 0x3F) << 1, "glc": (w0 >> 14) & 1,
                     "dlc": (w0 >> 13) & 1, "offset": _sx(w1 & 0x1FFFFF, 21), "soffset": (w1 >> 25) & 0x7F,
                     "imm": 1, "soe": 0}
            else:
                f = {"sdata": (w0 >> 6) & 0x7F, "sbase": (w0 & 0x3F) << 1, "glc": (w0 >> 16) & 1,
                     "nv": (w0 >> 15) & 1, "soe": (w0 >> 14) & 1, "imm": (w0 >> 17) & 1,
                     "offset": _sx(w1 & 0x1FFFFF, 21), "soffset": (w1 >> 25) & 0x7F}
            return self._finish(pc, fmt, op, f, words, None)
        if fmt == "DS":
            if self.gfx11:
                op = (w0 >> 18) & 0xFF
                gds = (w0 >> 17) & 1
                acc = 0
            else:
                op = (w0 >> 17) & 0xFF
                gds = (w0 >> 16) & 1
                acc = (w0 >> 25) & 1
            f = {"offset0": w0 & 0xFF, "offset1": (w0 >> 8) & 0xFF, "gds": gds, "acc": acc,
                 "addr": w1 & 0xFF, "data0": (w1 >> 8) & 0xFF, "data1": (w1 >> 16) & 0xFF, "vdst": (w1 >> 24) & 0xFF}
            return self._finish(pc, fmt, op, f, words, None)
        if fmt == "FLAT":
            op = (w0 >> 18) & 0x7F
            if self.gfx11:
                seg = (w0 >> 16) & 3
                f = {"offset": w0 & 0x1FFF if seg == 0 else _sx(w0 & 0x1FFF, 13), "dlc": (w0 >> 13) & 1,
                     "glc": (w0 >> 14) & 1,
                     "slc": (w0 >> 15) & 1, "seg": seg, "sve": (w1 >> 23) & 1, "acc": 0, "sc1": 0}
            else:
                seg = (w0 >> 14) & 3
                f = {"offset": w0 & 0x1FFF if seg == 0 else _sx(w0 & 0x1FFF, 13), "lds": (w0 >> 13) & 1,
                     "glc": (w0 >> 16) & 1, "slc": (w0 >> 17) & 1, "seg": seg, "sc1": (w0 >> 25) & 1,
                     "acc": (w1 >> 23) & 1, "sve": (w0 >> 13) & 1}
            f.update({"vaddr": w1 & 0xFF, "data": (w1 >> 8) & 0xFF, "saddr": (w1 >> 16) & 0x7F,
                      "vdst": (w1 >> 24) & 0xFF})
            fmt = ("FLAT", "SCRATCH", "GLOBAL", "?")[seg]
            return self._finish(pc, fmt, op, f, words, None)
        if fmt == "MUBUF":
            if self.gfx11:
                op = (w0 >> 18) & 0xFF
                f = {"offset": w0 & 0xFFF, "slc": (w0 >> 12) & 1, "dlc": (w0 >> 13) & 1, "glc": (w0 >> 14) & 1,
                     "tfe": (w1 >> 21) & 1, "offen": (w1 >> 22) & 1, "idxen": (w1 >> 23) & 1, "acc": 0,
                     "lds": 0, "sc1": 0}
            else:
                op = (w0 >> 18) & 0x7F
                f = {"offset": w0 & 0xFFF, "offen": (w0 >> 12) & 1, "idxen": (w0 >> 13) & 1,
                     "glc": (w0 >> 14) & 1, "sc1": (w0 >> 15) & 1, "lds": (w0 >> 16) & 1, "slc": (w0 >> 17) & 1,
                     "acc": (w1 >> 23) & 1}
            f.update({"vaddr": w1 & 0xFF, "vdata": (w1 >> 8) & 0xFF, "srsrc": ((w1 >> 16) & 0x1F) << 2,
                      "soffset": (w1 >> 24) & 0xFF})
            return self._finish(pc, fmt, op, f, words, None)
        raise self.illegal(pc, tuple(words) if fmt != "?" else (w0,),
                           f"unsupported instruction format {fmt}")

    def _finish_vop3(self, fetch, pc: int, fmt: str, op: int, f: dict, words: list[int]) -> Inst:
        """VOP3 / VOP3P after the two fixed dwords: on GFX11 a DPP word or literal may follow."""
        ext, ext_word, lit = self._vop3_gfx11_tail(fetch, pc, f, words) if self.gfx11 else ("", 0, None)
        inst = self._finish(pc, fmt, op, f, words, lit)
        if ext:
            inst.ext, inst.ext_word = ext, ext_word
            inst.f["src0"] = 0x100 | (ext_word & 0xFF)
            inst.name = base_name(inst.name) + "_e64_dpp"
        return inst

    @staticmethod
    def _vop3_gfx11_tail(fetch, pc: int, f: dict, words: list[int]) -> tuple[str, int, int | None]:
        """GFX11 VOP3/VOP3P: a DPP control word or a literal may follow the 8 bytes."""
        if f["src0"] == SRC_DPP16:
            w = fetch(pc + 8)
            words.append(w)
            return "dpp", w, None
        if f["src0"] in (SRC_DPP8, SRC_DPP8_FI):
            f["fi8"] = int(f["src0"] == SRC_DPP8_FI)       # DPP8 "fetch inactive"
            w = fetch(pc + 8)
            words.append(w)
            return "dpp8", w, None
        if SRC_LITERAL in (f["src0"], f["src1"], f["src2"]):
            lit = fetch(pc + 8)
            words.append(lit)
            return "", 0, lit
        return "", 0, None

    def _finish(self, pc: int, fmt: str, op: int, f: dict, words: list[int], lit: int | None) -> Inst:
        ent = self.table.get(fmt, {}).get(op)
        if ent is None:
            raise self.illegal(pc, tuple(words), f"no {fmt} instruction with opcode {op}")
        name, operands = ent[0], ent[1]
        inst = Inst(pc=pc, size=4 * len(words), words=tuple(words), fmt=fmt, op=op, name=name,
                    base=base_name(name), f=f, operands=operands, literal=lit)
        if fmt in ("FLAT", "GLOBAL", "SCRATCH", "MUBUF") and len(ent) > 2 and f.get("glc") and "atomic" in name:
            inst.operands = ent[2]
            if len(ent) > 3:
                inst.name = inst.base = ent[3]
        return inst
