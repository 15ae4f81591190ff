"""Render decoded instructions as text, in the syntax llvm-objdump-19 prints.

Used in error messages (an illegal instruction is named as the disassembler would name it)
and checked instruction by instruction against llvm-objdump-19 on LLVM-built code objects
(tests/shader/test_decoder.py).
"""

from __future__ import annotations

import re
import struct

from ...targets.table import get_target
from .decoder import Decoder, Inst, opcode_tables
from .errors import ShaderException

_F32_INLINE = {0x3F000000: "0.5", 0xBF000000: "-0.5", 0x3F800000: "1.0", 0xBF800000: "-1.0",
               0x40000000: "2.0", 0xC0000000: "-2.0", 0x40800000: "4.0", 0xC0800000: "-4.0",
               0x3E22F983: "0.15915494"}
_F16_INLINE = {0x3800: "0.5", 0xB800: "-0.5", 0x3C00: "1.0", 0xBC00: "-1.0", 0x4000: "2.0",
               0xC000: "-2.0", 0x4400: "4.0", 0xC400: "-4.0", 0x3118: "0.15915494"}
_F64_INLINE = {0x3FE00000: "0.5", 0xBFE00000: "-0.5", 0x3FF00000: "1.0", 0xBFF00000: "-1.0",
               0x40000000: "2.0", 0xC0000000: "-2.0", 0x40100000: "4.0", 0xC0100000: "-4.0"}
_INLINE_FLOAT_TEXT = {240: "0.5", 241: "-0.5", 242: "1.0", 243: "-1.0", 244: "2.0", 245: "-2.0",
                      246: "4.0", 247: "-4.0"}
_SPECIAL_SRC = {235: "src_shared_base", 236: "src_shared_limit", 237: "src_private_base",
                238: "src_private_limit", 239: "src_pops_exiting_wave_id", 251: "src_vccz",
                252: "src_execz", 253: "src_scc", 254: "src_lds_direct"}
_SDWA_SEL = ("BYTE_0", "BYTE_1", "BYTE_2", "BYTE_3", "WORD_0", "WORD_1", "DWORD", "7")
_SDWA_UNUSED = ("UNUSED_PAD", "UNUSED_SEXT", "UNUSED_PRESERVE", "3")
_DELAY_ID = ("NO_DEP", "VALU_DEP_1", "VALU_DEP_2", "VALU_DEP_3", "VALU_DEP_4", "TRANS32_DEP_1",
             "TRANS32_DEP_2", "TRANS32_DEP_3", "FMA_ACCUM_CYCLE_1", "SALU_CYCLE_1", "SALU_CYCLE_2",
             "SALU_CYCLE_3")
_DELAY_SKIP = ("SAME", "NEXT", "SKIP_1", "SKIP_2", "SKIP_3", "SKIP_4")
_TYPE_RE = re.compile(r"_([fiub])(16|32|64)")


def _shex(v: int) -> str:
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


def operand_bits(name: str, width: int) -> int:
    """Bit width of a source operand of `name` (16, 32 or 64) from the mnemonic's type suffix."""
    if width >= 2:
        return 64
    if name.startswith(("v_pk_", "v_dot", "s_")):
        return 32
    if "_mix" in name:
        return 16
    types = _TYPE_RE.findall(name)
    if types and types[-1][1] == "16":
        return 16
    return 32


_F16_BITS = {240: 0x3800, 241: 0xB800, 242: 0x3C00, 243: 0xBC00, 244: 0x4000, 245: 0xC000, 246: 0x4400,
              247: 0xC400, 248: 0x3118}


def _is_int16(name: str) -> bool:
    if name.startswith(("v_pk_", "v_dot", "s_")) or "_pk_" in name:
        return False
    types = _TYPE_RE.findall(name)
    return bool(types) and types[-1][1] == "16" and types[-1][0] != "f"


def _is_fp64(name: str) -> bool:
    return "_f64" in name


class Disassembler:
    """Turns `Inst` objects of one target into llvm-objdump text."""

    def __init__(self, target: str):
        self.target = target
        self.decoder = Decoder(target)
        self.gfx11 = self.decoder.gfx11
        self.gfx940 = get_target(target).gfx940_memory_encoding
        tables = opcode_tables(target)
        self.sendmsg = tables.get("SENDMSG", {})
        self.hwreg = tables.get("HWREG", {})
        self.sendmsg_rtn = tables.get("SENDMSG_RTN", {})

    # ------------------------------------------------------------------ registers / operands
    def sreg(self, idx: int, width: int = 1) -> str:
        if width == 2:
            idx &= ~1          # tuples are aligned; LLVM decodes a misaligned one aligned
        elif width > 2:
            idx &= ~3

        def rng(prefix: str, lo: int) -> str:
            return f"{prefix}{lo}" if width == 1 else f"{prefix}[{lo}:{lo + width - 1}]"
        if idx < 102 or (self.gfx11 and idx < 106):
            return rng("s", idx)
        pairs = {106: "vcc", 126: "exec"}
        if not self.gfx11:
            pairs.update({102: "flat_scratch", 104: "xnack_mask"})
        if idx in pairs and width == 2:
            return pairs[idx]
        if idx - 1 in pairs and width == 1:
            return pairs[idx - 1] + "_hi"
        if idx in pairs and width == 1:
            return pairs[idx] + "_lo"
        if width > 1 and idx + width - 1 > 123 and not (idx == 126 and width == 2):
            return "null"
        if 108 <= idx <= 123:
            return rng("ttmp", idx - 108)
        if idx == 124:
            return "null" if self.gfx11 else "m0"
        if idx == 125:
            return "m0" if self.gfx11 else "null"
        return rng("s", idx)

    def vreg(self, idx: int, width: int = 1, acc: bool = False) -> str:
        p = "a" if acc else "v"
        return f"{p}{idx}" if width == 1 else f"{p}[{idx}:{idx + width - 1}]"

    def literal_text(self, lit: int, bits: int, fp64: bool, int16: bool = False) -> str:
        if bits == 64:
            if fp64:
                if lit in _F64_INLINE:
                    return _F64_INLINE[lit]
                return f"0x{lit:x}"
            if lit <= 64:
                return str(lit)
            if lit >= 0xFFFFFFF0:
                return str(lit - (1 << 32))
            return f"0x{lit:x}"
        if bits == 16:
            v = lit & 0xFFFF
            if v in _F16_INLINE and not int16:
                return _F16_INLINE[v]
            if v <= 64:
                return str(v)
            if v >= 0xFFF0:
                return str(v - 0x10000)
            return f"0x{v:x}"
        if lit in _F32_INLINE:
            return _F32_INLINE[lit]
        if lit <= 64:
            return str(lit)
        if lit >= 0xFFFFFFF0:
            return str(lit - (1 << 32))
        return f"0x{lit:x}"

    def src(self, inst: Inst, val: int, width: int = 1) -> str:
        if val >= 256:
            return self.vreg(val - 256, width)
        if val < 128:
            return self.sreg(val, width)
        if val <= 192:
            return str(val - 128)
        if val <= 208:
            return str(192 - val)
        if val in _INLINE_FLOAT_TEXT or val == 248:
            if width == 1 and _is_int16(inst.name):
                return f"0x{_F16_BITS[val]:x}"
            if val != 248:
                return _INLINE_FLOAT_TEXT[val]
            return "0.15915494309189532" if width == 2 else "0.15915494"
        if val == 255:
            return self.literal_text(inst.literal or 0, operand_bits(inst.name, width), _is_fp64(inst.name),
                                     _is_int16(inst.name))
        return _SPECIAL_SRC.get(val, f"<src{val}>")

    # ------------------------------------------------------------------ entry point
    def render(self, inst: Inst) -> str:
        fn = getattr(self, "_r_" + inst.fmt, None)
        text = fn(inst) if fn else self._generic(inst, [])
        return text.rstrip()

    def _join(self, inst: Inst, ops: list[str], mods: list[str]) -> str:
        s = inst.name
        if ops:
            s += " " + ", ".join(ops)
        if mods:
            s += " " + " ".join(mods)
        return s

    def _field(self, inst: Inst, fname: str, width: int, cls: str, mods: dict | None = None) -> str:
        f = inst.f
        if fname == "=":
            return width  # fixed text stored in the width slot
        if fname == "literal":
            if inst.fmt == "SOPK":
                return self.literal_text(inst.literal or 0, 32, False)
            return f"0x{inst.literal:x}" if inst.literal is not None else "0x0"
        val = f.get(fname, 0)
        if cls == "v16":
            reg = val - 256 if fname.startswith("src") else val
            if fname.startswith("src") and val < 256:
                return self._apply_mods(self.src(inst, val, width), fname, mods)
            return self._apply_mods(f"v{reg & 0x7F}.{'h' if reg & 0x80 else 'l'}", fname, mods)
        if fname in ("src0", "src1", "src2", "ssrc0", "ssrc1", "src0x", "src0y"):
            if fname in ("ssrc0", "ssrc1") or val < 256:
                text = self.src(inst, val, width)
            else:
                text = self.vreg(val - 256, width, acc=cls == "a" or bool(mods and mods.get("acc_" + fname)))
            return self._apply_mods(text, fname, mods)
        if fname in ("vsrc1", "vsrc1x", "vsrc1y"):
            if val & 0x200:              # SDWA scalar src1
                return self._apply_mods(self.src(inst, val & 0xFF, width), "src1", mods)
            return self._apply_mods(self.vreg(val, width), "src1", mods)
        if cls == "s":
            return self.sreg(val, width)
        if cls == "a":
            return self.vreg(val, width, acc=True)
        return self.vreg(val, width, acc=bool(mods and mods.get("acc_" + fname)))

    @staticmethod
    def _apply_mods(text: str, fname: str, mods: dict | None) -> str:
        if not mods:
            return text
        key = {"src0": 0, "src1": 1, "src2": 2, "src0x": 0, "src0y": 0}.get(fname)
        if key is None:
            return text
        if mods.get("sext", 0) >> key & 1:
            text = f"sext({text})"
        if mods.get("abs", 0) >> key & 1:
            text = f"|{text}|"
        if mods.get("neg", 0) >> key & 1:
            numeric = text[0].isdigit() or (text[0] == "-" and text[1:2].isdigit())
            text = f"neg({text})" if numeric else f"-{text}"
        return text

    def _generic(self, inst: Inst, mods_out: list[str], mods: dict | None = None) -> str:
        ops = [self._field(inst, fn, w, c, mods) for fn, w, c in inst.operands]
        return self._join(inst, ops, mods_out)

    # ------------------------------------------------------------------ scalar formats
    def _simm(self, inst: Inst, style: str) -> str | None:
        v = inst.f["simm16"]
        optional = style.endswith("?")
        style = style.rstrip("?")
        if optional and v == 0:
            return None
        name = inst.name
        if name.startswith("s_waitcnt") and style.startswith("special"):
            return self._waitcnt(v)
        if name.startswith("s_sendmsg"):
            text = self.sendmsg.get(v & 0x3FF)
            if text is None or (v > 0x3FF and "MSG_" not in text):
                return str(v)
            return text
        if style == "special:hwreg":
            return self._hwreg(v)
        if name == "s_delay_alu":
            return self._delay_alu(v)
        if name == "s_set_gpr_idx_mode":
            return self._gpr_idx(v)
        if name == "s_waitcnt_depctr" and self.gfx11:
            return self._depctr(v)
        if style == "hex":
            return f"0x{v:x}"
        if style == "u16":
            return str(v) if v <= 64 else f"0x{v:x}"
        if style == "sdec":
            return str(v - 0x10000 if v & 0x8000 else v)
        return str(v)

    def _waitcnt(self, v: int) -> str:
        if self.gfx11:
            vm, exp, lgkm = (v >> 10) & 0x3F, v & 7, (v >> 4) & 0x3F
            maxes = (63, 7, 63)
        else:
            vm, exp, lgkm = (v & 0xF) | ((v >> 14) & 3) << 4, (v >> 4) & 7, (v >> 8) & 0xF
            maxes = (63, 7, 15)
        vals = (vm, exp, lgkm)
        names = ("vmcnt", "expcnt", "lgkmcnt")
        parts = [f"{n}({x})" for n, x, m in zip(names, vals, maxes) if x != m]
        if not parts:
            parts = [f"{n}({x})" for n, x in zip(names, vals)]
        return " ".join(parts)

    def _hwreg(self, v: int) -> str:
        rid, off, size = v & 0x3F, (v >> 6) & 0x1F, ((v >> 11) & 0x1F) + 1
        name = self.hwreg.get(rid, str(rid))
        if off == 0 and size == 32:
            return f"hwreg({name})"
        return f"hwreg({name}, {off}, {size})"

    @staticmethod
    def _delay_alu(v: int) -> str:
        id0, skip, id1 = v & 0xF, (v >> 4) & 7, (v >> 7) & 0xF
        parts = []
        if id0:
            parts.append(f"instid0({_DELAY_ID[id0] if id0 < len(_DELAY_ID) else id0})")
        if skip:
            parts.append(f"instskip({_DELAY_SKIP[skip] if skip < len(_DELAY_SKIP) else skip})")
        if id1:
            parts.append(f"instid1({_DELAY_ID[id1] if id1 < len(_DELAY_ID) else id1})")
        return " | ".join(parts) if parts else "0"

    # GFX11 s_waitcnt_depctr fields: (name, shift, width, default) in LLVM's print order
    _DEPCTR = (("depctr_hold_cnt", 7, 1, 1), ("depctr_sa_sdst", 0, 1, 1), ("depctr_va_vdst", 12, 4, 15),
               ("depctr_va_sdst", 9, 3, 7), ("depctr_va_ssrc", 8, 1, 1), ("depctr_va_vcc", 1, 1, 1),
               ("depctr_vm_vsrc", 2, 3, 7))

    def _depctr(self, v: int) -> str:
        if v & 0x60:                      # bits outside every field: printed as a number
            return f"0x{v:x}"
        fields = [(n, (v >> sh) & ((1 << w) - 1), d) for n, sh, w, d in self._DEPCTR]
        shown = [f"{n}({x})" for n, x, d in fields if x != d] or [f"{n}({x})" for n, x, _ in fields]
        return " ".join(shown)

    @staticmethod
    def _gpr_idx(v: int) -> str:
        if v > 15:
            return f"0x{v:x}"
        names = ("SRC0", "SRC1", "SRC2", "DST")
        return "gpr_idx(" + ",".join(n for i, n in enumerate(names) if v >> i & 1) + ")"

    def _scalar(self, inst: Inst) -> str:
        if inst.name.startswith("s_sendmsg_rtn"):
            v = inst.f["ssrc0"]
            msg = self.sendmsg_rtn.get(v, f"sendmsg({v}, 0, 0)")
            return self._join(inst, [self.sreg(inst.f["sdst"], 2 if inst.name.endswith("b64") else 1), msg], [])
        if inst.name == "s_set_gpr_idx_on":
            return self._join(inst, [self.src(inst, inst.f["ssrc0"]), self._gpr_idx(inst.f["ssrc1"])], [])
        ops = []
        for fn, w, c in inst.operands:
            if fn == "simm16":
                t = self._simm(inst, c)
                if t is not None:
                    ops.append(t)
            else:
                ops.append(self._field(inst, fn, w, c))
        return self._join(inst, ops, [])

    _r_SOP1 = _r_SOP2 = _r_SOPC = _r_SOPK = _r_SOPP = _scalar

    def _r_SMEM(self, inst: Inst) -> str:
        f = inst.f
        ops = []
        mods = []
        for fn, w, c in inst.operands:
            if fn == "sdata":
                ops.append(self.sreg(f["sdata"], w))
            elif fn == "sbase":
                ops.append(self.sreg(f["sbase"], w))
            elif fn == "=" and w.startswith("0x"):
                ops.extend(self._smem_offset(inst))
            elif fn == "=" and w.isdigit():
                v = f["sdata"]
                ops.append(str(v) if v <= 64 else f"0x{v:x}")
            else:
                ops.append(self._field(inst, fn, w, c))
        if inst.name.startswith(("s_load", "s_buffer_load", "s_store", "s_buffer_store", "s_scratch", "s_atomic",
                                 "s_buffer_atomic")):
            if f.get("glc"):
                mods.append("glc")
            if f.get("dlc"):
                mods.append("dlc")
        return self._join(inst, ops, mods)

    def _smem_offset(self, inst: Inst) -> list[str]:
        f = inst.f
        off = f["offset"]
        if self.gfx11:
            so = f["soffset"]
            if so == 0x7C:
                return [_shex(off)] if off else ["null"]
            if off == 0:
                return [self.sreg(so)]
            return [f"{self.sreg(so)} offset:{_shex(off)}"]
        if f["soe"]:
            reg = self.sreg(f["soffset"])
            return [f"{reg} offset:{_shex(off)}"] if f["imm"] else [reg]
        if f["imm"]:
            return [_shex(off)]
        return [self.sreg(off & 0x7F)]

    # ------------------------------------------------------------------ vector ALU
    def _vop_ext_mods(self, inst: Inst) -> tuple[dict, list[str]]:
        """Source modifiers and trailing text of an SDWA / DPP extension word."""
        w = inst.ext_word
        mods: dict = {}
        tail: list[str] = []
        if inst.ext == "sdwa":
            mods = {"sext": (w >> 19 & 1) | (w >> 27 & 1) << 1, "neg": (w >> 20 & 1) | (w >> 28 & 1) << 1,
                    "abs": (w >> 21 & 1) | (w >> 29 & 1) << 1}
            if inst.fmt != "VOPC":
                if w >> 13 & 1:
                    tail.append("clamp")
                omod = (w >> 14) & 3
                if omod:
                    tail.append(("", "mul:2", "mul:4", "div:2")[omod])
                tail.append(f"dst_sel:{_SDWA_SEL[(w >> 8) & 7]}")
                tail.append(f"dst_unused:{_SDWA_UNUSED[(w >> 11) & 3]}")
            elif w >> 13 & 1:
                tail.append("clamp")
            tail.append(f"src0_sel:{_SDWA_SEL[(w >> 16) & 7]}")
            if inst.fmt != "VOP1":
                tail.append(f"src1_sel:{_SDWA_SEL[(w >> 24) & 7]}")
        elif inst.ext == "dpp":
            if any(t[0] == "f" for t in _TYPE_RE.findall(inst.name)):
                mods = {"neg": (w >> 20 & 1) | (w >> 22 & 1) << 1, "abs": (w >> 21 & 1) | (w >> 23 & 1) << 1}
            tail = self._dpp_tail(w)
        elif inst.ext == "dpp8":
            sel = [(w >> (8 + 3 * i)) & 7 for i in range(8)]
            tail = ["dpp8:[" + ",".join(map(str, sel)) + "]"]
            if inst.f.get("fi8"):
                tail.append("fi:1")
        return mods, tail

    def _dpp_tail(self, w: int) -> list[str]:
        ctrl = (w >> 8) & 0x1FF
        tail = []
        if ctrl <= 0xFF:
            tail.append("quad_perm:[" + ",".join(str((ctrl >> (2 * i)) & 3) for i in range(4)) + "]")
        elif 0x101 <= ctrl <= 0x10F:
            tail.append(f"row_shl:{ctrl & 0xF}")
        elif 0x111 <= ctrl <= 0x11F:
            tail.append(f"row_shr:{ctrl & 0xF}")
        elif 0x121 <= ctrl <= 0x12F:
            tail.append(f"row_ror:{ctrl & 0xF}")
        elif ctrl == 0x130:
            tail.append("wave_shl:1")
        elif ctrl == 0x134:
            tail.append("wave_rol:1")
        elif ctrl == 0x138:
            tail.append("wave_shr:1")
        elif ctrl == 0x13C:
            tail.append("wave_ror:1")
        elif ctrl == 0x140:
            tail.append("row_mirror")
        elif ctrl == 0x141:
            tail.append("row_half_mirror")
        elif ctrl == 0x142:
            tail.append("row_bcast:15")
        elif ctrl == 0x143:
            tail.append("row_bcast:31")
        elif 0x150 <= ctrl <= 0x15F:
            tail.append(f"{'row_share' if self.gfx11 else 'row_newbcast'}:{ctrl & 0xF}")
        elif 0x160 <= ctrl <= 0x16F:
            tail.append(f"row_xmask:{ctrl & 0xF}")
        else:
            tail.append(f"dpp_ctrl:0x{ctrl:x}")
        tail.append(f"row_mask:0x{(w >> 28) & 0xF:x}")
        tail.append(f"bank_mask:0x{(w >> 24) & 0xF:x}")
        if w >> 19 & 1:
            tail.append("bound_ctrl:1")
        if self.gfx11 and w >> 18 & 1:
            tail.append("fi:1")
        return tail

    def _vop_short(self, inst: Inst) -> str:
        mods, tail = self._vop_ext_mods(inst) if inst.ext else ({}, [])
        ops = []
        for fn, w, c in inst.operands:
            if inst.ext == "sdwa" and inst.fmt == "VOPC" and fn == "=" and w in ("vcc", "vcc_lo"):
                ew = inst.ext_word
                ops.append(self.sreg((ew >> 8) & 0x7F, 1 if self.gfx11 else 2) if ew >> 15 & 1 else w)
                continue
            ops.append(self._field(inst, fn, w, c, mods))
        return self._join(inst, ops, tail)

    _r_VOP1 = _r_VOP2 = _r_VOPC = _vop_short

    def _r_VOP3(self, inst: Inst) -> str:
        f = inst.f
        name = inst.name
        srcs = [o for o in inst.operands if o[0] in ("src0", "src1", "src2")]
        is_mai = name.startswith(("v_mfma", "v_smfmac"))
        vop3b = any(o[0] == "sdst" for o in inst.operands)
        mods = {"abs": 0 if vop3b else f["abs"], "neg": f["neg"]}
        if not any(t[0] == "f" for t in _TYPE_RE.findall(name)):
            mods = {}                  # integer operations take no source modifiers
        if name.startswith("v_accvgpr_read"):
            mods["acc_src0"] = 1
        ops = []
        for fn, w, c in inst.operands:
            if fn == "sdst":
                ops.append(self.sreg(f["sdst"], w))
            elif fn == "vdst" and name.startswith("v_accvgpr_write"):
                ops.append(self.vreg(f["vdst"], w, acc=True))
            else:
                ops.append(self._field(inst, fn, w, c, mods))
        tail = []
        if not is_mai:
            opsel = f["opsel"]
            if (opsel and not vop3b and "legacy" not in name
                    and any(t[1] == "16" for t in _TYPE_RE.findall(name))):
                n = len(srcs)
                bits = [opsel >> i & 1 for i in range(n)] + [opsel >> 3 & 1]
                tail.append("op_sel:[" + ",".join(map(str, bits)) + "]")
            if f["clamp"]:
                tail.append("clamp")
            if f["omod"]:
                tail.append(("", "mul:2", "mul:4", "div:2")[f["omod"]])
        if inst.ext:
            tail += self._vop_ext_mods(inst)[1]
        return self._join(inst, ops, tail)

    def _r_VOP3P(self, inst: Inst) -> str:
        f = inst.f
        name = inst.name
        srcs = [o for o in inst.operands if o[0] in ("src0", "src1", "src2")]
        n = len(srcs)
        mix = "_mix" in name
        mods = {"neg": f["neg"], "abs": f["neg_hi"]} if mix else {"neg": 0}
        ops = [self._field(inst, fn, w, c, mods) for fn, w, c in inst.operands]
        tail = []
        opsel = f["opsel"]
        opsel_hi = f["opsel_hi"] | f["opsel_hi2"] << 2
        default_hi = 0 if mix else (1 << n) - 1
        if opsel & ((1 << n) - 1):
            tail.append("op_sel:[" + ",".join(str(opsel >> i & 1) for i in range(n)) + "]")
        if (opsel_hi & ((1 << n) - 1)) != default_hi:
            tail.append("op_sel_hi:[" + ",".join(str(opsel_hi >> i & 1) for i in range(n)) + "]")
        if f["neg"] & ((1 << n) - 1) and not mix:
            tail.append("neg_lo:[" + ",".join(str(f["neg"] >> i & 1) for i in range(n)) + "]")
        if f["neg_hi"] & ((1 << n) - 1) and not mix:
            tail.append("neg_hi:[" + ",".join(str(f["neg_hi"] >> i & 1) for i in range(n)) + "]")
        if f["clamp"]:
            tail.append("clamp")
        if inst.ext:
            tail += self._vop_ext_mods(inst)[1]
        return self._join(inst, ops, tail)

    def _r_VOPD(self, inst: Inst) -> str:
        xname, yname = inst.name.split("::")
        halves: list[list[str]] = [[], []]
        half = 0
        for fn, w, c in inst.operands:
            if fn == "::":
                half = 1
                continue
            halves[half].append(self._field(inst, fn, w, c))
        return f"{xname} {', '.join(halves[0])} :: {yname} {', '.join(halves[1])}"

    # ------------------------------------------------------------------ memory
    def _r_DS(self, inst: Inst) -> str:
        f = inst.f
        acc = bool(f.get("acc"))
        ops = []
        for fn, w, c in inst.operands:
            if fn == "addr":
                ops.append(self.vreg(f["addr"]))
            elif fn in ("data0", "data1", "vdst"):
                ops.append(self.vreg(f[fn], w, acc=acc))
            else:
                ops.append(self._field(inst, fn, w, c))
        tail = []
        o0, o1 = f["offset0"], f["offset1"]
        if "2" in inst.name.split("_")[1] or "2st64" in inst.name or "2addr" in inst.name:
            if o0:
                tail.append(f"offset0:{o0}")
            if o1:
                tail.append(f"offset1:{o1}")
        else:
            off = o0 | o1 << 8
            if inst.name == "ds_swizzle_b32" and off:
                tail.append("offset:" + self._swizzle(off))
            elif off:
                tail.append(f"offset:{off}")
        if f["gds"]:
            tail.append("gds")
        return self._join(inst, ops, tail)

    @staticmethod
    def _swizzle(off: int) -> str:
        if off & 0x8000:
            return "swizzle(QUAD_PERM," + ",".join(str((off >> (2 * i)) & 3) for i in range(4)) + ")"
        and_m, or_m, xor_m = off & 0x1F, (off >> 5) & 0x1F, (off >> 10) & 0x1F
        if and_m == 0x1F and or_m == 0 and xor_m and (xor_m & (xor_m - 1)) == 0:
            return f"swizzle(SWAP,{xor_m})"
        if or_m == 0 and and_m == 0x1F and xor_m:
            return f"swizzle(REVERSE,{xor_m + 1})"
        mask = ""
        for bit in range(4, -1, -1):
            a, o, x = and_m >> bit & 1, or_m >> bit & 1, xor_m >> bit & 1
            mask += "1" if (not a and o) else "0" if (not a and not o) else ("i" if x else "p")
        return f'swizzle(BITMASK_PERM,"{mask}")'

    def _cache_mods(self, inst: Inst) -> list[str]:
        f = inst.f
        out = []
        if self.gfx940:
            if f.get("glc"):
                out.append("sc0")
            if f.get("slc"):
                out.append("nt")
            if f.get("sc1"):
                out.append("sc1")
        else:
            if f.get("glc"):
                out.append("glc")
            if f.get("slc"):
                out.append("slc")
            if f.get("dlc"):
                out.append("dlc")
            if f.get("sc1") and not self.gfx11:
                out.append("scc")
        return out

    def _flat(self, inst: Inst) -> str:
        f = inst.f
        off_reg = 0x7C if self.gfx11 else 0x7F
        acc = bool(f.get("acc"))
        ops = []
        saddr = f["saddr"]
        seg = inst.fmt
        for fn, w, c in inst.operands:
            if fn == "vaddr":
                if seg == "FLAT":
                    ops.append(self.vreg(f["vaddr"], 2))
                elif seg == "GLOBAL":
                    ops.append(self.vreg(f["vaddr"], 2 if saddr == off_reg else 1))
                else:  # scratch
                    uses_v = f["sve"] if (self.gfx11 or self.gfx940) else saddr == off_reg
                    ops.append(self.vreg(f["vaddr"]) if uses_v else "off")
            elif fn in ("data", "vdst"):
                ops.append(self.vreg(f[fn], w, acc=acc))
            elif fn == "=" and w == "off":
                ops.append("off" if saddr == off_reg else self.sreg(saddr, 2 if seg == "GLOBAL" else 1))
            else:
                ops.append(self._field(inst, fn, w, c))
        if seg != "FLAT" and not any(o[0] == "=" and o[1] == "off" for o in inst.operands):
            ops.append("off" if saddr == off_reg else self.sreg(saddr, 2 if seg == "GLOBAL" else 1))
        if seg == "SCRATCH" and not any(o[0] == "vaddr" for o in inst.operands):
            pass
        tail = []
        if f["offset"]:
            tail.append(f"offset:{f['offset']}")
        tail += self._cache_mods(inst)
        if (f.get("lds") and not self.gfx11 and seg != "SCRATCH") or (seg == "SCRATCH" and f.get("lds") and not self.gfx940):
            tail.append("lds")
        return self._join(inst, ops, tail)

    _r_FLAT = _r_GLOBAL = _r_SCRATCH = _flat

    def _r_MUBUF(self, inst: Inst) -> str:
        f = inst.f
        if not inst.operands:            # cache controls (buffer_wbl2, buffer_inv, …)
            return self._join(inst, [], self._cache_mods(inst) if self.gfx940 else [])
        acc = bool(f.get("acc"))
        ops = []
        for fn, w, c in inst.operands:
            if fn == "vaddr":
                n = f["offen"] + f["idxen"]
                ops.append(self.vreg(f["vaddr"], n) if n else "off")
            elif fn == "vdata":
                if not f.get("lds"):
                    ops.append(self.vreg(f["vdata"], w + f.get("tfe", 0), acc=acc))
            elif fn == "srsrc":
                ops.append(self.sreg(f["srsrc"], 4))
            elif fn == "soffset":
                ops.append(self.src(inst, f["soffset"]))
            else:
                ops.append(self._field(inst, fn, w, c))
        tail = []
        if f["offen"]:
            tail.append("offen")
        if f["idxen"]:
            tail.append("idxen")
        if f["offset"]:
            tail.append(f"offset:{f['offset']}")
        tail += self._cache_mods(inst)
        if f.get("lds"):
            tail.append("lds")
        if f.get("tfe"):
            tail.append("tfe")
        return self._join(inst, ops, tail)


def disassemble_words(target: str, data: bytes, base: int = 0) -> list[tuple[int, str, Inst]]:
    """Decode and render a whole code blob: [(address, text, inst)]."""
    dis = Disassembler(target)
    words = struct.unpack_from(f"<{len(data) // 4}I", data)

    def fetch(addr: int) -> int:
        i = (addr - base) // 4
        return words[i] if i < len(words) else 0

    out = []
    pc = base
    end = base + len(data)
    while pc < end:
        try:
            inst = dis.decoder.decode(fetch, pc)
        except ShaderException:           # not an instruction: llvm-objdump prints the dword
            out.append((pc, f".long 0x{fetch(pc):08x}", None))
            pc += 4
            continue
        out.append((pc, dis.render(inst), inst))
        pc += inst.size
    return out
