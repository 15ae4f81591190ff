"""Generate the opcode tables (optable_<target>.py) by asking LLVM 19's disassembler.

Developer tool, not imported at run time: `python -m pytest_amdgpu.sim.shader.gen_optables`
writes optables.py.
For every encoding format and every opcode value it builds a probe instruction whose fields
hold distinct, recognisable values, disassembles all probes with `llvm-mc-19 --disassemble`,
and records what LLVM prints: the mnemonic and, for each printed operand, which encoding field
it came from and how many dwords wide it is. The tables are therefore facts observed from an
independent oracle, not constants typed by hand; tests/shader/test_decoder.py regenerates
them and compares whenever llvm-mc-19 is installed.  An entry LLVM prints identically for
several targets is written once, under the tuple of those targets (see `group_by_targets`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

LLVM_MC = "llvm-mc-19"
TARGETS = ("gfx90a", "gfx942", "gfx1100")


def _le(words: list[int]) -> str:
    return ",".join(f"0x{b:02x}" for w in words for b in w.to_bytes(4, "little"))


@dataclass
class Probe:
    """One probe: the format, opcode, words, and field→(register class, number) for mapping."""

    fmt: str
    op: int
    words: list[int]
    fields: dict[str, tuple[str, int]]   # field -> (class "v"/"s"/"a"/"imm", value as printed)


# ---------------------------------------------------------------------------------------------
# probe builders.  A format is a list of words plus operand fields; every operand field is tried
# with a distinct VGPR, a distinct SGPR (9-bit source fields only) or zero, because the
# disassembler rejects encodings whose unused fields are not zero.  The valid probe with the
# most non-zero fields wins (VGPR before SGPR).

LIT = 0x12345678
VREGS = {"src0": 10, "src1": 20, "vsrc1": 20, "src2": 40, "vdst": 30, "addr": 10, "data0": 20,
         "data1": 40, "vaddr": 10, "data": 20, "vdata": 20}
SREGS = {"src0": 20, "src1": 40, "src2": 60, "ssrc0": 20, "ssrc1": 40, "sdst": 10, "sdata": 16,
         "soffset": 20, "sbase": 20}


@dataclass
class Field:
    name: str
    word: int
    shift: int
    kind: str            # "src9" (9-bit operand), "v8" (VGPR number), "s7" (SGPR number)
    choices: tuple = ("v", "s", "0")


IMM_PROBES = (0x1234, 0xFFF0, 7)


def _combos(fields: list[Field]):
    import itertools
    opts = []
    for f in fields:
        if f.kind == "src9":
            opts.append([c for c in f.choices])
        elif f.kind == "v8":
            opts.append(["v", "0"])
        elif f.kind == "sbase":
            opts.append(["s", "0"])
        else:
            opts.append(["s", "0"])
    yield from itertools.product(*opts)


def _rank(combo) -> tuple:
    return (sum(c == "0" for c in combo), sum(c == "s" for c in combo))


def _build(fmt: str, op: int, base: list[int], fields: list[Field], extra: dict | None = None) -> list[Probe]:
    combos = sorted(_combos(fields), key=_rank)
    out = []
    for combo in combos:
        words = list(base)
        fmap: dict[str, tuple[str, int]] = dict(extra or {})
        for f, c in zip(fields, combo):
            if c == "0":
                continue
            if f.kind == "src9":
                val = 0x100 + VREGS[f.name] if c == "v" else SREGS[f.name]
                fmap[f.name] = (c, VREGS[f.name] if c == "v" else SREGS[f.name])
            elif f.kind == "v8":
                val = VREGS[f.name]
                fmap[f.name] = ("v", val)
            elif f.kind == "sbase":
                fmap[f.name] = ("s", SREGS[f.name])
                val = SREGS[f.name] >> 1
            else:
                val = SREGS[f.name]
                fmap[f.name] = ("s", val)
            words[f.word] |= val << f.shift
        out.append(Probe(fmt, op, words, fmap))
    return out


def gfx9_probes(fmt: str, op: int, target: str) -> list[Probe]:
    if fmt == "SOP2":
        return _build(fmt, op, [0x80000000 | op << 23, LIT],
                      [Field("sdst", 0, 16, "s7"), Field("ssrc1", 0, 8, "s7"), Field("ssrc0", 0, 0, "s7")])
    if fmt == "SOPK":
        return [p for imm in IMM_PROBES for p in
                _build(fmt, op, [0xB0000000 | op << 23 | imm, LIT], [Field("sdst", 0, 16, "s7")],
                       {"simm16": ("imm", imm)})]
    if fmt == "SOP1":
        return _build(fmt, op, [0xBE800000 | op << 8, LIT], [Field("sdst", 0, 16, "s7"), Field("ssrc0", 0, 0, "s7")])
    if fmt == "SOPC":
        return _build(fmt, op, [0xBF000000 | op << 16, LIT], [Field("ssrc1", 0, 8, "s7"), Field("ssrc0", 0, 0, "s7")])
    if fmt == "SOPP":
        return [Probe(fmt, op, [0xBF800000 | op << 16 | imm], {"simm16": ("imm", imm)})
                for imm in (*IMM_PROBES, 0)]
    if fmt == "SMEM":
        out = []
        for off in (0x124, 0):
            w0 = 0xC0000000 | op << 18 | (1 << 17 if off else 0)
            out += _build(fmt, op, [w0, off], [Field("sdata", 0, 6, "s7"), Field("sbase", 0, 0, "sbase")],
                          {"offset": ("imm", off)})
        return out
    if fmt == "VOP2":
        return _build(fmt, op, [op << 25, LIT], [Field("vdst", 0, 17, "v8"), Field("vsrc1", 0, 9, "v8"),
                                                 Field("src0", 0, 0, "src9")])
    if fmt == "VOP1":
        return _build(fmt, op, [0x7E000000 | op << 9, LIT], [Field("vdst", 0, 17, "v8"), Field("src0", 0, 0, "src9")])
    if fmt == "VOPC":
        return _build(fmt, op, [0x7C000000 | op << 17, LIT], [Field("vsrc1", 0, 9, "v8"), Field("src0", 0, 0, "src9")])
    if fmt == "VOP3":
        return _build(fmt, op, [0xD0000000 | op << 16, 0],
                      [Field("vdst", 0, 0, "v8"), Field("src0", 1, 0, "src9"), Field("src1", 1, 9, "src9"),
                       Field("src2", 1, 18, "src9")], {"sdst": ("s", 0)})
    if fmt == "VOP3P":
        return _build(fmt, op, [0xD3800000 | op << 16 | 1 << 14, 3 << 27],
                      [Field("vdst", 0, 0, "v8"), Field("src0", 1, 0, "src9"), Field("src1", 1, 9, "src9"),
                       Field("src2", 1, 18, "src9")])
    if fmt == "DS":
        return _build(fmt, op, [0xD8000000 | op << 17, 0],
                      [Field("vdst", 1, 24, "v8"), Field("addr", 1, 0, "v8"), Field("data0", 1, 8, "v8"),
                       Field("data1", 1, 16, "v8")])
    if fmt in ("FLAT", "GLOBAL", "SCRATCH"):
        seg = {"FLAT": 0, "SCRATCH": 1, "GLOBAL": 2}[fmt]
        sve = 1 << 13 if (fmt == "SCRATCH" and target == "gfx942") else 0
        saddr = 0 if fmt == "FLAT" else 0x7F << 16
        out = []
        for glc in (0, 1):
            out.append(_build(fmt, op, [0xDC000000 | op << 18 | glc << 16 | seg << 14 | sve, saddr],
                              [Field("vdst", 1, 24, "v8"), Field("vaddr", 1, 0, "v8"), Field("data", 1, 8, "v8")]))
        return out
    if fmt == "MUBUF":
        out = []
        for glc in (0, 1):
            out.append(_build(fmt, op, [0xE0000000 | op << 18 | glc << 14 | 1 << 12, 2 << 16 | SREGS["soffset"] << 24],
                              [Field("vaddr", 1, 0, "v8"), Field("vdata", 1, 8, "v8")],
                              {"srsrc": ("s", 8), "soffset": ("s", SREGS["soffset"])}))
        out[0].append(Probe(fmt, op, [0xE0000000 | op << 18, 0], {}))   # cache controls: no operands
        return out
    return []


def gfx11_probes(fmt: str, op: int, target: str) -> list[Probe]:
    if fmt in ("SOP2", "SOPK", "SOP1", "SOPC", "SOPP", "VOP2", "VOP1", "VOPC"):
        return gfx9_probes(fmt, op, target)
    if fmt == "SMEM":
        out = []
        for off in (0x124, 0):
            out += _build(fmt, op, [0xF4000000 | op << 18, 0x7C << 25 | off],
                          [Field("sdata", 0, 6, "s7"), Field("sbase", 0, 0, "sbase")], {"offset": ("imm", off)})
        return out
    if fmt == "VOP3":
        return _build(fmt, op, [0xD4000000 | op << 16, 0],
                      [Field("vdst", 0, 0, "v8"), Field("src0", 1, 0, "src9"), Field("src1", 1, 9, "src9"),
                       Field("src2", 1, 18, "src9")], {"sdst": ("s", 0)})
    if fmt == "VOP3P":
        return _build(fmt, op, [0xCC000000 | op << 16 | 1 << 14, 3 << 27],
                      [Field("vdst", 0, 0, "v8"), Field("src0", 1, 0, "src9"), Field("src1", 1, 9, "src9"),
                       Field("src2", 1, 18, "src9")])
    if fmt == "VOPD":
        # opx = op >> 5, opy = op & 31.  src0x v10, vsrc1x v20, vdstx v30; src0y v40, vsrc1y v50,
        # vdsty v33 (field 16, its low bit is implied as !vdstx[0]).  Unused vsrc1 fields must be 0.
        opx, opy = op >> 5, op & 31
        out = []
        for v1x in (20, 0):
            for v1y in (50, 0):
                w0 = 0xC8000000 | opx << 22 | opy << 17 | v1x << 9 | 0x100 + 10
                w1 = 30 << 24 | 16 << 17 | v1y << 9 | 0x100 + 40
                fields = {"vdstx": ("v", 30), "src0x": ("v", 10), "vdsty": ("v", 33), "src0y": ("v", 40)}
                if v1x:
                    fields["vsrc1x"] = ("v", v1x)
                if v1y:
                    fields["vsrc1y"] = ("v", v1y)
                out.append(Probe(fmt, op, [w0, w1, LIT], fields))
        return out
    if fmt == "DS":
        return _build(fmt, op, [0xD8000000 | op << 18, 0],
                      [Field("vdst", 1, 24, "v8"), Field("addr", 1, 0, "v8"), Field("data0", 1, 8, "v8"),
                       Field("data1", 1, 16, "v8")])
    if fmt in ("FLAT", "GLOBAL", "SCRATCH"):
        seg = {"FLAT": 0, "SCRATCH": 1, "GLOBAL": 2}[fmt]
        sve = 1 << 23 if fmt == "SCRATCH" else 0
        out = []
        for glc in (0, 1):
            out.append(_build(fmt, op, [0xDC000000 | op << 18 | seg << 16 | glc << 14, sve | 0x7C << 16],
                              [Field("vdst", 1, 24, "v8"), Field("vaddr", 1, 0, "v8"), Field("data", 1, 8, "v8")]))
        return out
    if fmt == "MUBUF":
        out = []
        for glc in (0, 1):
            out.append(_build(fmt, op, [0xE0000000 | op << 18 | glc << 14, 1 << 22 | 2 << 16 | SREGS["soffset"] << 24],
                              [Field("vaddr", 1, 0, "v8"), Field("vdata", 1, 8, "v8")],
                              {"srsrc": ("s", 8), "soffset": ("s", SREGS["soffset"])}))
        out[0].append(Probe(fmt, op, [0xE0000000 | op << 18, 0], {}))   # cache controls: no operands
        return out
    return []


OPCODE_RANGES = {
    "gfx9": {"SOP2": 96, "SOPK": 28, "SOP1": 256, "SOPC": 128, "SOPP": 128, "SMEM": 256,
             "VOP2": 64, "VOP1": 256, "VOPC": 256, "VOP3": 1024, "VOP3P": 128, "DS": 256,
             "FLAT": 128, "GLOBAL": 128, "SCRATCH": 128, "MUBUF": 128},
    "gfx11": {"SOP2": 96, "SOPK": 28, "SOP1": 256, "SOPC": 128, "SOPP": 128, "SMEM": 256,
              "VOP2": 64, "VOP1": 256, "VOPC": 256, "VOP3": 1024, "VOP3P": 128, "VOPD": 16 * 32,
              "DS": 256, "FLAT": 128, "GLOBAL": 128, "SCRATCH": 128, "MUBUF": 256},
}

_REG = re.compile(r"^(-?\|?)([vsa])(?:(\d+)|\[(\d+):(\d+)\])(\|?)$")
_WARN = re.compile(r":(\d+):(\d+): warning: invalid instruction encoding")


def split_operands(text: str) -> tuple[str, list[str], list[str]]:
    """Split one disassembly line into mnemonic, operands and trailing modifiers."""
    text = text.strip()
    if " :: " in text:
        return text, [], []
    parts = text.split(None, 1)
    mnem = parts[0]
    if len(parts) == 1:
        return mnem, [], []
    ops = [o.strip() for o in parts[1].split(", ")]
    mods: list[str] = []
    last = ops[-1].split(" ")
    ops[-1] = last[0]
    mods = last[1:]
    return mnem, ops, mods


def _markers(fmt: str) -> list[tuple[int, str]]:
    """Two distinct separator instructions (alternated so an empty segment is still seen)."""
    if fmt == "SOPP":
        return [(0x7E000000 | 255 << 17 | 1 << 9 | 0x1FE, "v_mov_b32_e32 v255, v254"),
                (0x7E000000 | 253 << 17 | 1 << 9 | 0x1FC, "v_mov_b32_e32 v253, v252")]
    return [(0xBF800007, "s_nop 7"), (0xBF800006, "s_nop 6")]


def run_probes(target: str, family: str, probes: list[Probe], fmt: str) -> list[str | None]:
    """Disassemble probes; returns the first printed line per probe, or None if invalid."""
    marks = _markers(fmt)
    lines = []
    # four marker words around every probe: an invalid probe's tail can swallow at most two
    for i, p in enumerate(probes):
        lines.append(_le([marks[i % 2][0]] * 4))
        lines.append(_le(p.words))
    lines.append(_le([marks[len(probes) % 2][0]] * 4))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        name = f.name
    r = subprocess.run([LLVM_MC, "--disassemble", "-triple=amdgcn-amd-amdhsa", f"-mcpu={target}", name],
                       capture_output=True, text=True, check=False)
    Path(name).unlink()
    bad = set()
    for m in _WARN.finditer(r.stderr):
        if int(m.group(2)) == 1:
            bad.add(int(m.group(1)))
    out = [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.strip().startswith(".")]
    texts = {marks[0][1]: 0, marks[1][1]: 1}
    segs: list[list[str]] = []
    cur: list[str] | None = None
    prev = None
    for ln in out:
        kind = texts.get(ln)
        if kind is not None:
            if kind != prev:
                if cur is not None:
                    segs.append(cur)
                cur = []
            prev = kind
        else:
            prev = None if cur else prev
            if cur is not None:
                cur.append(ln)
    if len(segs) != len(probes):
        raise RuntimeError(f"{target} {fmt}: {len(segs)} segments for {len(probes)} probes")
    res: list[str | None] = []
    for i, _p in enumerate(probes):
        line_no = 2 * i + 2
        seg = segs[i]
        if line_no in bad or not seg or "Invalid" in seg[0] or "invalid" in seg[0]:
            res.append(None)
        else:
            res.append(seg[0])
    return res


def analyse(p: Probe, text: str) -> tuple[str, tuple]:
    """Map each printed operand of `text` back to the probe's fields."""
    if " :: " in text:                  # VOPD: two halves, joined as "x::y"
        xt, yt = text.split(" :: ")
        xm, xd = analyse(p, xt)
        ym, yd = analyse(p, yt)
        return f"{xm}::{ym}", (*xd, ("::", 0, ""), *yd)
    mnem, ops, _mods = split_operands(text)
    by_val: dict[tuple[str, int], str] = {}
    for fname, (cls, val) in p.fields.items():
        by_val.setdefault((cls, val), fname)
    desc = []
    for o in ops:
        m = _REG.match(o)
        if m:
            cls = m.group(2)
            lo = int(m.group(3) if m.group(3) is not None else m.group(4))
            hi = int(m.group(5)) if m.group(5) is not None else lo
            key = by_val.get((cls, lo)) or by_val.get(("v" if cls == "a" else cls, lo))
            if key is None and cls == "s":
                key = by_val.get(("v", lo))
            if key is not None:
                desc.append((key, hi - lo + 1, cls))
                continue
        m16 = re.match(r"^v(\d+)\.[lh]$", o)
        if m16 and ("v", int(m16.group(1))) in by_val:
            desc.append((by_val[("v", int(m16.group(1)))], 1, "v16"))
            continue
        if o == f"0x{LIT:x}":
            desc.append(("literal", 1, "imm"))
            continue
        desc.append(("=", o, ""))
    return mnem, tuple(desc)


def _simm_style(by_imm: dict[int, str]) -> str:
    """How LLVM prints a 16-bit immediate, judged from the probes 0x1234, 0xFFF0 and 7."""
    big, neg, small = by_imm.get(0x1234), by_imm.get(0xFFF0), by_imm.get(7)
    if big == "0x1234":
        return "u16" if small == "7" else "hex"
    if big == "4660":
        return "sdec" if neg == "-16" else "dec"
    tok = big or neg or small or ""
    return "special:" + re.split(r"[(\s]", tok)[0]


def analyse_simm(valid: list[tuple[Probe, str]]) -> tuple[str, tuple]:
    """SOPP/SOPK: operands, with the 16-bit immediate's print style (see _simm_style)."""
    _p0, t0 = valid[0]
    mnem = t0.split()[0]
    by_imm: dict[int, str] = {}
    sdst = None
    hw = False
    for p, t in valid:
        rest = t[len(mnem):].strip()
        if "hwreg(" in rest:
            hw = True
        if p.fmt == "SOPK" and rest and not hw:
            first, _, tail = rest.partition(", ")
            if (tail and _REG.match(first)) or first == "null":
                if "sdst" in p.fields:
                    sdst = analyse(p, mnem + " " + first)[1]
                rest = tail
        by_imm.setdefault(p.fields["simm16"][1], rest)
    if hw:
        t = next(t for _p, t in valid)
        if mnem.startswith("s_getreg"):
            return mnem, (("sdst", 1, "s"), ("simm16", 1, "special:hwreg"))
        if "imm32" in mnem:
            return mnem, (("simm16", 1, "special:hwreg"), ("literal", 1, "imm"))
        return mnem, (("simm16", 1, "special:hwreg"), ("sdst", 1, "s"))
    if all(v == "" for v in by_imm.values()):
        return mnem, tuple(sdst or ())
    style = _simm_style(by_imm)
    if by_imm.get(0) == "":
        style += "?"              # the immediate is not printed when it is zero
    return mnem, (*(sdst or ()), ("simm16", 1, style))


def generate(target: str) -> dict:
    family = "gfx11" if target.startswith("gfx11") else "gfx9"
    builder = gfx11_probes if family == "gfx11" else gfx9_probes
    table: dict[str, dict[int, tuple]] = {}
    memory = ("FLAT", "GLOBAL", "SCRATCH", "MUBUF")
    for fmt, n in OPCODE_RANGES[family].items():
        # groups[op] = list of variant lists (memory formats: one list per GLC value)
        groups = []
        for op in range(n):
            b = builder(fmt, op, target)
            groups.append(b if fmt in memory else [b])
        flat = [p for g in groups for vs in g for p in vs]
        texts = iter(run_probes(target, family, flat, fmt))
        entries: dict[int, tuple] = {}
        for op, g in enumerate(groups):
            forms = []
            for vs in g:
                found = None
                valid = []
                for p in vs:
                    t = next(texts)
                    if t is not None:
                        valid.append((p, t))
                        if found is None:
                            found = analyse(p, t)
                if fmt in ("SOPP", "SOPK") and valid:
                    found = analyse_simm(valid)
                forms.append(found)
            if not any(forms):
                continue
            if fmt in memory:
                base = forms[0] or forms[1]
                ret = forms[1] or forms[0]
                entries[op] = (base[0], base[1], ret[1]) if ret[0] == base[0] else (base[0], base[1], ret[1], ret[0])
            else:
                entries[op] = forms[0]
        table[fmt] = entries
    if "VOPD" in table:
        table["VOPDX"], table["VOPDY"] = factor_vopd(table.pop("VOPD"))
    return table


def factor_vopd(entries: dict[int, tuple]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """Split the VOPD table (opcode opx << 5 | opy) into its X and Y halves.

    LLVM accepts exactly every pairing of a valid X operation with a valid Y operation and
    prints each half independently of the other; this checks that observation (and raises if a
    future LLVM breaks it) so the halves can be stored once (decoder.compose_vopd)."""
    xs: dict[int, tuple] = {}
    ys: dict[int, tuple] = {}
    for op, (name, operands) in entries.items():
        xname, yname = name.split("::")
        cut = operands.index(("::", 0, ""))
        for half, key, entry in ((xs, op >> 5, (xname, operands[:cut])), (ys, op & 31, (yname, operands[cut + 1:]))):
            if half.setdefault(key, entry) != entry:
                raise RuntimeError(f"VOPD opcode {op}: half {key} prints {entry}, elsewhere {half[key]}")
    if len(entries) != len(xs) * len(ys):
        raise RuntimeError(f"VOPD: {len(entries)} valid opcodes are not the {len(xs)} x {len(ys)} pairings")
    return dict(sorted(xs.items())), dict(sorted(ys.items()))


def _disassemble_words(target: str, words: list[int]) -> list[str]:
    """Disassemble single-dword instructions known to be valid, one output line each."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(_le([w]) for w in words) + "\n")
        name = f.name
    r = subprocess.run([LLVM_MC, "--disassemble", "-triple=amdgcn-amd-amdhsa", f"-mcpu={target}", name],
                       capture_output=True, text=True, check=True)
    Path(name).unlink()
    out = [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.strip().startswith(".")]
    if len(out) != len(words):
        raise RuntimeError(f"{target}: {len(out)} lines for {len(words)} words")
    return out


def generate_named(target: str, table: dict) -> dict:
    """Symbolic immediates: s_sendmsg message texts and s_getreg hardware-register names."""
    sopp = {v[0]: k for k, v in table["SOPP"].items()}
    sopk = {v[0]: k for k, v in table["SOPK"].items()}
    op = sopp["s_sendmsg"]
    vals = list(range(1024))
    texts = _disassemble_words(target, [0xBF800000 | op << 16 | v for v in vals])
    sendmsg = {}
    for v, t in zip(vals, texts):
        arg = t.split(None, 1)[1] if " " in t else ""
        if arg.startswith("sendmsg("):
            sendmsg[v] = arg
    op = sopk["s_getreg_b32"]
    ids = list(range(64))
    texts = _disassemble_words(target, [0xB0000000 | op << 23 | 31 << 11 | i for i in ids])
    hwreg = {}
    for i, t in zip(ids, texts):
        m = re.search(r"hwreg\(([A-Z_0-9]+)\)", t)
        if m and not m.group(1).isdigit():
            hwreg[i] = m.group(1)
    rtn = {}
    sop1 = {v[0]: k for k, v in table["SOP1"].items()}
    if "s_sendmsg_rtn_b32" in sop1:
        op = sop1["s_sendmsg_rtn_b32"]
        vals = list(range(256))
        words = [0xBE800000 | 4 << 16 | op << 8 | v for v in vals]
        probes = [Probe("SOP1", op, [w], {}) for w in words]
        for v, t in zip(vals, run_probes(target, "gfx11", probes, "SOP1")):
            m = re.search(r"(sendmsg\([A-Z_0-9]+\))", t or "")
            if m and not m.group(1)[8].isdigit():
                rtn[v] = m.group(1)
    return {"SENDMSG": sendmsg, "HWREG": hwreg, "SENDMSG_RTN": rtn}


def generate_target(target: str) -> dict[str, dict[int, object]]:
    """Every table of one target: section (format, or SENDMSG / HWREG / SENDMSG_RTN) -> key -> entry."""
    table = generate(target)
    return {sec: entries for sec, entries in {**table, **generate_named(target, table)}.items() if entries}


def group_by_targets(per_target: dict[str, dict[str, dict]]) -> dict[tuple[str, ...], dict[str, dict]]:
    """Write each fact once: (targets printing it identically) -> section -> key -> entry."""
    groups: dict[tuple[str, ...], dict[str, dict]] = {}
    sections = sorted({sec for tables in per_target.values() for sec in tables})
    for sec in sections:
        keys = sorted({k for tables in per_target.values() for k in tables.get(sec, {})})
        for k in keys:
            holders: dict[object, list[str]] = {}
            for t, tables in per_target.items():
                entry = tables.get(sec, {}).get(k)
                if entry is not None:
                    holders.setdefault(entry, []).append(t)
            for entry, ts in holders.items():
                groups.setdefault(tuple(ts), {}).setdefault(sec, {})[k] = entry
    order = {t: i for i, t in enumerate(per_target)}
    return dict(sorted(groups.items(), key=lambda g: (-len(g[0]), [order[t] for t in g[0]])))


def render_module(groups: dict[tuple[str, ...], dict[str, dict]]) -> str:
    """optables.py: the groups, one entry per line."""
    head = ('"""Opcode tables of gfx90a, gfx942 and gfx1100: generated by gen_optables.py from\n'
            "llvm-mc-19 --disassemble.  Do not edit.\n\n"
            "GROUPS maps a tuple of targets to the entries LLVM prints identically for all of them,\n"
            "so an entry shared by several targets is written once; a target's table is the union of\n"
            "the groups that name it (decoder.opcode_tables).  Sections are encoding formats, where\n"
            "opcode -> (mnemonic as LLVM prints it, operands), each operand (field, dwords, register\n"
            "class) or ('=', fixed text, ''), and memory formats carry a third item, the operand list\n"
            "of the GLC=1 (returning atomic) form, and a fourth, its mnemonic when it differs; VOPD is\n"
            "stored as its halves VOPDX (opx) and VOPDY (opy), every pairing valid; and\n"
            "SENDMSG / SENDMSG_RTN / HWREG, the symbolic immediates of s_sendmsg, s_sendmsg_rtn and\n"
            's_getreg / s_setreg.\n"""\n\n')
    lines = [head + "GROUPS = {"]
    for targets, sections in groups.items():
        lines.append(f"    {targets!r}: {{")
        for sec, entries in sections.items():
            lines.append(f"        {sec!r}: {{")
            lines.extend(f"            {k!r}: {v!r}," for k, v in entries.items())
            lines.append("        },")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m pytest_amdgpu.sim.shader.gen_optables (regenerates all targets)")
        return 2
    per_target = {t: generate_target(t) for t in TARGETS}
    (Path(__file__).parent / "optables.py").write_text(render_module(group_by_targets(per_target)))
    for t, tables in per_target.items():
        print(t, {k: len(v) for k, v in tables.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
