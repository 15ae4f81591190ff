"""The shader core: runs a dispatch's waves over GFX9 / GFX11 machine code.

`ShaderCore(target).run(vm, regs, cancel=..., clock=...)` executes every workgroup of the
dispatch described by `regs` (DispatchRegs).  Waves that sit at the same PC are executed
together as one `Batch` (a waves x lanes matrix per register), in chunks of whole workgroups.
A scalar branch on which the waves of a batch disagree splits it; batches that reach the same
PC merge again (the scheduler always runs the batch with the lowest PC, where structured code
reconverges).  s_barrier parks a batch until every wave of its workgroups has arrived.

Instructions are decoded once per code address and compiled to closures (valu.py, salu.py,
mem.py); the compiled program is cached per (VM, code address, wave size) and revalidated
against the code bytes at each dispatch.  Instruction fetch goes through the VM (execute
permission), so a bad PC is a VMFault like any other access.

A launch (every dispatch register but the user SGPRs) is checked and split into chunks once;
a small launch also keeps its waves' initial state, so a repeated dispatch copies one packed
register file (or resets the batch of the previous dispatch, which ended) and writes its own
user SGPRs instead of setting the waves up again.  LDS is zeroed memory made at first use.
"""

from __future__ import annotations

import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from ...targets.table import Target, get_target
from ..memory import VMFault
from . import valu_ops
from .decoder import Decoder, Inst
from .disasm import Disassembler
from .dispatch import DispatchRegs
from .errors import DispatchCancelled, ShaderException
from .mem import compile_ds, compile_smem, compile_vmem
from .salu import BARRIER, END, Branch, GprIdx, MultiJump, compile_salu
from .state import Batch
from .valu import Ctx, compile_valu, illegal

U32, U64 = np.uint32, np.uint64

CHUNK_LANES = 1 << 17         # lanes executed together (whole workgroups per chunk)
CHUNK_BYTES = 96 << 20         # register-file bytes a chunk may use
SLICE = 4096                   # instructions a batch runs before the scheduler looks around
SLICE_LANE_INSTRUCTIONS = 4 << 20   # ... or fewer for big batches, so cancel is seen quickly
_PROGRAM_CACHE = 64
_LAUNCH_CACHE = 256
_INITIAL_LANES = 4096          # a launch keeps the initial state of this many lanes' chunks
_SPARE_BYTES = 256 << 10       # ... and a spare batch when its register file is at most this

# GFX9/GFX11 hardware register ids used by s_getreg/s_setreg (LLVM's HWREG table)
HW_REG_MODE, HW_REG_STATUS, HW_REG_TRAPSTS, HW_REG_HW_ID = 1, 2, 3, 4
HW_REG_GPR_ALLOC, HW_REG_LDS_ALLOC, HW_REG_IB_STS, HW_REG_SH_MEM_BASES = 5, 6, 7, 15
HW_REG_FLAT_SCR_LO, HW_REG_FLAT_SCR_HI, HW_REG_HW_ID1, HW_REG_HW_ID2 = 20, 21, 23, 24
HW_REG_SHADER_CYCLES = 29


class _Entry:
    __slots__ = ("fn", "inst", "next")

    def __init__(self, fn, nxt: int, inst: Inst) -> None:
        self.fn = fn
        self.next = nxt
        self.inst = inst


class Program:
    """Decoded and compiled instructions of the code reached from one entry point."""

    def __init__(self, core: ShaderCore, lanes: int, ctx: Ctx) -> None:
        self.core = core
        self.lanes = lanes
        self.ctx = ctx
        self.code: dict[int, _Entry] = {}
        self.words: dict[int, tuple[int, ...]] = {}
        self.safe: dict[tuple[int, int], bool] = {}
        self.variants: dict[tuple[int, int, int], _Entry] = {}
        self.snapshot: tuple[int, int, bytes] | None = None     # (lo, hi, code bytes) after a run
        self.lo = None
        self.hi = None

    def valid_for(self, vm) -> bool:
        """The code bytes are still what was decoded (one read of the decoded range)."""
        lo, hi = self.lo, self.hi
        if lo is None:
            return True
        try:
            blob = vm.read(lo, hi - lo)
        except Exception:
            return False
        snap = self.snapshot
        if snap is not None and snap[0] == lo and snap[1] == hi:
            return blob == snap[2]
        data = np.frombuffer(blob, dtype=U32)
        # a copy taken at once: another executor running this program may decode meanwhile
        for pc, ws in tuple(self.words.items()):
            i = (pc - lo) // 4
            if tuple(int(x) for x in data[i:i + len(ws)]) != ws:
                return False
        return True

    def take_snapshot(self, vm) -> None:
        """Keep the decoded range's bytes after a run, so `valid_for` is one comparison."""
        lo, hi = self.lo, self.hi
        snap = self.snapshot
        if lo is None or (snap is not None and snap[0] == lo and snap[1] == hi):
            return
        try:
            self.snapshot = (lo, hi, vm.read(lo, hi - lo))
        except Exception:
            self.snapshot = None

    def exec_safe(self, start: int, end: int, rt: Runtime) -> bool:
        """Whether every instruction in [start, end) only changes EXEC-masked state (VGPRs,
        memory through active lanes) — so a wave with EXEC = 0 may run it as a no-op."""
        key = (start, end)
        ok = self.safe.get(key)
        if ok is None:
            ok = True
            pc = start
            while pc < end and ok:
                e = self.code.get(pc) or self.decode(pc, rt)
                ok = _exec_masked(e.inst)
                pc = e.next
            self.safe[key] = ok
        return ok

    def indexed(self, pc: int, offset: int, mode: int, rt: Runtime) -> _Entry:
        """The instruction at `pc` under GFX9 VGPR indexing: VGPR operands selected by `mode`
        (SRC0 1, SRC1 2, SRC2 4, DST 8) are offset by M0[7:0] = `offset`."""
        key = (pc, offset, mode)
        e = self.variants.get(key)
        if e is None:
            base = self.code.get(pc) or self.decode(pc, rt)
            inst = base.inst
            if inst.fmt in ("VOP1", "VOP2", "VOPC", "VOP3", "VOP3P") and offset:
                f = dict(inst.f)
                for bit, field in ((1, "src0"), (2, "src1"), (4, "src2")):
                    if mode & bit and field in f and f[field] >= 256:
                        f[field] += offset
                if mode & 2 and "vsrc1" in f and not f["vsrc1"] & 0x200:
                    f["vsrc1"] += offset
                if mode & 8 and "vdst" in f and not any(o[0] == "vdst" and o[2] == "s" for o in inst.operands):
                    f["vdst"] += offset
                inst = Inst(pc=inst.pc, size=inst.size, words=inst.words, fmt=inst.fmt, op=inst.op, name=inst.name,
                            base=inst.base, f=f, operands=inst.operands, literal=inst.literal, ext=inst.ext,
                            ext_word=inst.ext_word)
                e = _Entry(self.core.compile(inst, self.ctx), base.next, inst)
            else:
                e = base
            self.variants[key] = e
        return e

    def decode(self, pc: int, rt: Runtime) -> _Entry:
        vm = rt.vm
        cache: dict[int, int] = {}

        def fetch(addr: int) -> int:
            if addr in cache:
                return cache[addr]
            vm.check_exec(addr, 4)
            v = int.from_bytes(vm.read(addr, 4), "little")
            cache[addr] = v
            return v

        if pc & 3:
            raise ShaderException("illegal_instruction", pc=pc, mnemonic="<misaligned PC>",
                                  message=f"program counter 0x{pc:x} is not dword aligned")
        dec = self.core.decoder
        inst = dec.decode(fetch, pc)
        fn = self.core.compile(inst, self.ctx)
        e = _Entry(fn, pc + inst.size, inst)
        self.code[pc] = e
        self.words[pc] = inst.words
        end = pc + inst.size
        self.lo = pc if self.lo is None else min(self.lo, pc)
        self.hi = end if self.hi is None else max(self.hi, end)
        return e


_NOOP_SOPP = {"s_nop", "s_waitcnt", "s_delay_alu", "s_clause", "s_waitcnt_depctr", "s_set_inst_prefetch_distance",
              "s_inst_prefetch", "s_waitcnt_vscnt", "s_waitcnt_vmcnt", "s_waitcnt_lgkmcnt", "s_waitcnt_expcnt"}
_VALU_SAFE_KINDS = {"alu", "mac", "cndmask", "vcc_in", "mbcnt_lo", "mbcnt_hi", "acc_read", "acc_write", "acc_mov",
                    "nop"}


def _exec_masked(inst: Inst) -> bool:
    fmt = inst.fmt
    if fmt in ("DS", "FLAT", "GLOBAL", "SCRATCH", "MUBUF"):
        return not inst.f.get("gds")
    if fmt in ("SOPP", "SOPK"):
        return inst.name in _NOOP_SOPP
    if fmt in ("VOP1", "VOP2", "VOP3", "VOP3P"):
        if any(o[0] == "sdst" for o in inst.operands):
            return False
        if fmt == "VOP3P":
            return True
        o = valu_ops.lookup(inst.base)
        return o is not None and o.kind in _VALU_SAFE_KINDS
    return fmt == "VOPD"


class _Launch:
    """A launch seen before (ShaderCore._launches, keyed by every register that decides the
    checks, the chunks, the program and the initial waves except the user SGPRs): the checks
    passed, its chunks, the program it ran last and the initial state of its small chunks."""

    __slots__ = ("L", "chunks", "code", "initial", "kept_lanes")

    def __init__(self, L: int, chunks: tuple) -> None:
        self.L = L
        self.chunks = chunks
        self.code: tuple[int, Program] | None = None    # (id(vm), Program) of the last run
        self.initial: dict[int, _Initial] = {}         # chunk index -> its initial state
        self.kept_lanes = 0                             # lanes of the initial states kept


def _user_words(user: Sequence, n: int) -> bytes:
    """The first `n` user SGPRs from COMPUTE_USER_DATA values (zeros past the given ones), as
    little-endian dwords."""
    row = [int(x) & 0xFFFFFFFF for x in user[:n]]
    return struct.pack(f"<{n}I", *row, *[0] * (n - len(row)))


class _Initial:
    """One chunk's waves as launched (ShaderCore._initial_batch) and the LDS they need.

    A small chunk keeps its batch as a read-only template (`keep`): later dispatches of the
    launch start from copies of it, or reset a batch of an earlier dispatch that ran to its
    end (`done`) to it, which saves making one; then write their own user SGPRs (`start`)."""

    __slots__ = ("batch", "lds_len", "lds_size", "nuser", "nwg", "pack", "spare", "spare_ok", "user",
                 "user_words", "wg_of_wave")

    def __init__(self, wg_of_wave: np.ndarray, nwg: int, lds_len: int, lds_size: int, nuser: int) -> None:
        self.wg_of_wave = wg_of_wave
        self.nwg = nwg
        self.lds_len = lds_len          # bytes of the chunk's LDS buffer
        self.lds_size = lds_size        # LDS bytes per workgroup
        self.nuser = nuser
        self.batch: Batch | None = None
        self.user: tuple = ()           # the template's user SGPR values (COMPUTE_USER_DATA)
        self.user_words: tuple[tuple, bytes] = ((), b"")   # other values seen last, packed
        self.pack: Callable[..., bytes] | None = None        # packs nuser 32-bit values
        self.spare: list[Batch] = []
        self.spare_ok = False           # its register file is small enough to keep a spare

    def keep(self, b: Batch, regs: DispatchRegs) -> None:
        """Keep `b` (not run yet) as the template of later launches."""
        t = b.template()
        self.user = tuple(regs.user_data[:self.nuser])
        self.pack = struct.Struct(f"<{self.nuser}I").pack
        self.spare_ok = t.regfile.nbytes <= _SPARE_BYTES
        self.batch = t

    def start(self, regs: DispatchRegs) -> Batch:
        """A batch of the kept waves with the user SGPRs of `regs`."""
        b = None
        spare = self.spare
        if spare:
            try:
                b = spare.pop()
            except IndexError:          # another executor took it
                pass
            else:
                b.relaunch(self.batch)
        if b is None:
            b = self.batch.launch()
        n = self.nuser
        if n:
            u = tuple(regs.user_data[:n])
            if u != self.user:
                last = self.user_words
                if last[0] != u:
                    try:
                        words = self.pack(*u)
                    except struct.error:    # fewer values, or not 32-bit ones
                        words = _user_words(u, n)
                    last = self.user_words = (u, words)
                b.write_sgprs(last[1])
        return b

    def done(self, b: Batch) -> None:
        """`b`, started from this chunk's template, ended as one batch (no split, no error):
        keep it for `start` to reset (one spare, of a small register file)."""
        if self.spare_ok and not self.spare and b.owns_files():
            self.spare.append(b)


class Runtime:
    """Per-dispatch state the handlers use: VM, LDS of the current chunk, clock, callbacks.

    The chunk's LDS (`lds`, and `lds32` its dwords) is zeroed memory of `lds_len` bytes made at
    the first access: a chunk whose waves never touch LDS costs nothing for it."""

    __slots__ = ("_lds", "_lds32", "cancel", "clock", "core", "gfx11", "instructions", "interrupt",
                 "lane_instructions", "lds_len", "lds_size", "regs", "target", "vm")

    def __init__(self, core: ShaderCore, vm, regs: DispatchRegs, clock, cancel, interrupt) -> None:
        self.core = core
        self.target = core.target
        self.gfx11 = core.gfx11
        self.vm = vm
        self.regs = regs
        self.clock = clock if clock is not None else _default_clock
        self.cancel = cancel
        self.interrupt = interrupt
        self._lds = self._lds32 = None      # each chunk sets lds_len / lds_size, and _lds = None
        self.lds_len = 16
        self.lds_size = 0
        self.lane_instructions = 0
        self.instructions = 0

    @property
    def lds(self) -> np.ndarray:
        """The current chunk's LDS bytes: one block per workgroup (Batch.wg_slot)."""
        lds = self._lds
        return lds if lds is not None else self._make_lds()[0]

    @property
    def lds32(self) -> np.ndarray:
        """The current chunk's LDS as dwords."""
        lds32 = self._lds32
        return lds32 if lds32 is not None else self._make_lds()[1]

    def _make_lds(self) -> tuple[np.ndarray, np.ndarray]:
        lds = np.zeros(self.lds_len, dtype=np.uint8)
        lds32 = lds.view(U32)
        self._lds, self._lds32 = lds, lds32
        return lds, lds32

    def render(self, inst: Inst) -> str:
        try:
            return self.core.disassembler.render(inst)
        except Exception:  # the message must never fail
            return inst.name

    def send_interrupt(self, m0: np.ndarray) -> None:
        if self.interrupt is None:
            return
        for v in np.asarray(m0).reshape(-1):
            self.interrupt(int(v) & 0xFFFFFF)

    def hwreg(self, b: Batch, rid: int):
        regs = self.regs
        if rid == HW_REG_MODE:
            return b.mode
        if rid == HW_REG_TRAPSTS:
            return b.trapsts
        if rid == HW_REG_STATUS:
            return np.where(b.scc, U32(1), U32(0)) | U32(1 << 13 if b.exec_full else 0)
        if rid in (HW_REG_HW_ID, HW_REG_HW_ID1):
            return (b.wave % 16).astype(U32)
        if rid == HW_REG_SH_MEM_BASES:
            return U32(((regs.private_aperture >> 48) & 0xFFFF) | (((regs.lds_aperture >> 48) & 0xFFFF) << 16))
        if rid == HW_REG_LDS_ALLOC:
            return U32((-(-self.lds_size // 512)) << 12)
        if rid == HW_REG_GPR_ALLOC:
            return U32(0)
        if rid == HW_REG_FLAT_SCR_LO:
            return (b.fscr & U64(0xFFFFFFFF)).astype(U32)
        if rid == HW_REG_FLAT_SCR_HI:
            return (b.fscr >> U64(32)).astype(U32)
        if rid == HW_REG_SHADER_CYCLES:
            return U32(int(self.clock()) & 0xFFFFF)
        return U32(0)

    def set_hwreg(self, b: Batch, rid: int, value, mask) -> None:
        # the registers are replaced, not written in place: a launched batch shares them
        # with its cached initial state (Batch.launch)
        if rid == HW_REG_MODE:
            b.mode = ((b.mode & ~mask) | value).astype(U32)
        elif rid == HW_REG_TRAPSTS:
            b.trapsts = ((b.trapsts & ~mask) | value).astype(U32)


_BOUNDS = re.compile(r"out of bounds for axis (\d+) with size (\d+)")


def _register_overflow(exc: IndexError, b: Batch) -> bool:
    """Whether numpy's IndexError `exc` came from indexing a register file of `b` (VGPRs, AGPRs
    or SGPRs) rather than from a bug in an instruction's arithmetic."""
    m = _BOUNDS.search(str(exc))
    if m is None:
        return False
    axis, size = int(m.group(1)), int(m.group(2))
    return (axis == 0 and size in (b.v.shape[0], b.a.shape[0])) or (axis == 1 and size == b.s.shape[1])


def _pc_of(b: Batch) -> int:
    return b.pc


def _slice(lanes: int) -> int:
    """Instructions a batch of `lanes` lanes runs before the scheduler looks around."""
    return SLICE if lanes <= _SLICE_FULL_LANES else max(64, SLICE_LANE_INSTRUCTIONS // lanes)


_SLICE_FULL_LANES = SLICE_LANE_INSTRUCTIONS // SLICE


def _default_clock() -> int:
    import time
    return time.monotonic_ns() // 10


class ShaderCore:
    """Runs dispatches for one target (see module docstring)."""

    def __init__(self, target: Target | str) -> None:
        self.target = get_target(target) if isinstance(target, str) else target
        self.decoder = Decoder(self.target.name, self.target.family)
        self.disassembler = Disassembler(self.target.name)
        self.gfx11 = self.target.family == "gfx11"
        self._programs: OrderedDict = OrderedDict()
        self._launches: OrderedDict = OrderedDict()     # launch key -> _Launch (checked)
        self._last_program: tuple | None = None          # (key, Program) of the last dispatch
        self._lock = threading.Lock()
        self._stats: tuple[int, int] | None = None       # (lane-instructions, instructions)
        self.trace: Callable[[Inst, Batch], None] | None = None   # debugging: called after each instruction

    @property
    def last_stats(self) -> dict:
        """Counts of the last completed dispatch: {"lane_instructions": …, "instructions": …}
        (lane-instructions = instructions x lanes of their batches), {} before the first."""
        st = self._stats
        if st is None:
            return {}
        return {"lane_instructions": st[0], "instructions": st[1]}

    # -- compilation ----------------------------------------------------------------------------
    def compile(self, inst: Inst, ctx: Ctx):
        """The handler of one instruction; one the core cannot build raises only when reached."""
        try:
            return self._compile(inst, ctx)
        except Exception as exc:
            return illegal(inst, f"unimplemented instruction form ({type(exc).__name__}: {exc})")

    def _compile(self, inst: Inst, ctx: Ctx):
        fmt = inst.fmt
        if fmt in ("SOP1", "SOP2", "SOPK", "SOPC", "SOPP"):
            return compile_salu(ctx, inst)
        if fmt in ("VOP1", "VOP2", "VOPC", "VOP3", "VOP3P", "VOPD"):
            return compile_valu(ctx, inst)
        if fmt == "SMEM":
            return compile_smem(ctx, inst)
        if fmt in ("FLAT", "GLOBAL", "SCRATCH", "MUBUF"):
            return compile_vmem(ctx, inst)
        if fmt == "DS":
            return compile_ds(ctx, inst)
        return illegal(inst, "unimplemented instruction format")

    def _program(self, vm, regs: DispatchRegs, lanes: int) -> Program:
        key = (id(vm), regs.pgm_addr, lanes, regs.lds_aperture, regs.private_aperture)
        last = self._last_program          # a repeated dispatch skips the LRU bookkeeping
        if last is not None and last[0] == key:
            prog = last[1]
        else:
            with self._lock:
                prog = self._programs.get(key)
                if prog is not None:
                    self._programs.move_to_end(key)
        if prog is not None and prog.valid_for(vm):
            self._last_program = (key, prog)
            return prog
        ctx = Ctx(self.target, lanes, lds_aperture=regs.lds_aperture, private_aperture=regs.private_aperture)
        prog = Program(self, lanes, ctx)
        with self._lock:
            self._programs[key] = prog
            while len(self._programs) > _PROGRAM_CACHE:
                self._programs.popitem(last=False)
        self._last_program = (key, prog)
        return prog

    # -- dispatch -------------------------------------------------------------------------------
    def run(self, vm, regs: DispatchRegs, *, cancel: threading.Event | None = None,
            clock: Callable[[], int] | None = None, interrupt: Callable[[int], None] | None = None,
            fp_errors_ignored: bool = False) -> None:
        """Execute the dispatch to completion; raises VMFault, ShaderException, DispatchCancelled.

        GPU arithmetic never raises: the dispatch runs under np.errstate(all="ignore"), unless
        the caller says its thread already ignores floating-point errors (np.seterr; a
        simulated GPU thread does, and saves entering np.errstate every dispatch)."""
        if not fp_errors_ignored:
            with np.errstate(all="ignore"):
                return self.run(vm, regs, cancel=cancel, clock=clock, interrupt=interrupt, fp_errors_ignored=True)
        if cancel is None:
            cancel = threading.Event()
        # the launch: every register that decides the checks, the chunks, the program and the
        # initial waves, except the user SGPRs (written per dispatch: _Initial.start)
        try:
            key = (regs.wave32, regs.pgm_addr, regs.rsrc1, regs.rsrc2, regs.rsrc3, regs.grid, regs.workgroup,
                   regs.start, regs.scratch_base, regs.scratch_wave_bytes, regs.scratch_waves, regs.lds_bytes,
                   regs.lds_aperture, regs.private_aperture)
            launch = self._launches.get(key)
        except TypeError:                   # sizes given as lists or arrays
            key = (regs.wave32, regs.pgm_addr, regs.rsrc1, regs.rsrc2, regs.rsrc3, tuple(regs.grid),
                   tuple(regs.workgroup), tuple(regs.start), regs.scratch_base, regs.scratch_wave_bytes,
                   regs.scratch_waves, regs.lds_bytes, regs.lds_aperture, regs.private_aperture)
            launch = self._launches.get(key)
        if launch is None:
            launch = self._new_launch(key, regs)
        # the program this launch ran last, if its code bytes are unchanged (Program.valid_for)
        prog = None
        code = launch.code
        if code is not None and code[0] == id(vm):
            prog = code[1]
            if not prog.valid_for(vm):
                prog = None
        if prog is None:
            prog = self._program(vm, regs, launch.L)
            launch.code = (id(vm), prog)
        rt = Runtime(self, vm, regs, clock, cancel, interrupt)
        initial = launch.initial
        for i, chunk in enumerate(launch.chunks):
            if cancel.is_set():
                raise DispatchCancelled("dispatch cancelled")
            ini = initial.get(i)
            if ini is None:
                b, ini = self._initial_batch(regs, launch.L, chunk)
                lanes = b.W * b.L
                if launch.kept_lanes + lanes <= _INITIAL_LANES:   # small launches repeat: keep
                    launch.kept_lanes += lanes                   # their initial state
                    ini.keep(b, regs)
                    initial[i] = ini
            else:
                b = ini.start(regs)
            rt._lds = rt._lds32 = None
            rt.lds_len, rt.lds_size = ini.lds_len, ini.lds_size
            r, _e = self._run_batch(prog, rt, b)
            if r is not END:
                self._schedule(prog, rt, b, r, ini.wg_of_wave, ini.nwg)
            elif ini.batch is not None and self.trace is None:   # a trace hook may hold on to b
                ini.done(b)
        prog.take_snapshot(vm)
        self._stats = (rt.lane_instructions, rt.instructions)

    def _new_launch(self, key: tuple, regs: DispatchRegs) -> _Launch:
        """Check a launch not seen before and split it into chunks (cached under `key`)."""
        t = self.target
        wave32 = bool(regs.wave32) and 32 in t.wave_sizes
        if not wave32 and 64 not in t.wave_sizes:
            wave32 = True
        L = 32 if wave32 else 64
        self._check_regs(regs, L)
        launch = _Launch(L, tuple(self._chunks(regs, L)))
        with self._lock:
            self._launches[key] = launch
            while len(self._launches) > _LAUNCH_CACHE:
                self._launches.popitem(last=False)
        return launch

    def _check_regs(self, regs: DispatchRegs, L: int) -> None:
        wg, grid = regs.workgroup, regs.grid
        if type(wg) is tuple and type(grid) is tuple and len(wg) == 3 and len(grid) == 3:
            x, y, z = wg
            gx, gy, gz = grid
            if (type(x) is int and type(y) is int and type(z) is int and type(gx) is int
                    and type(gy) is int and type(gz) is int and x > 0 and y > 0 and z > 0
                    and x * y * z <= 1024 and gx >= 0 and gy >= 0 and gz >= 0
                    and (regs.rsrc2 >> 1) & 0x1F <= 16):
                return          # the usual case: plain ints, nothing to report

        def bad(msg: str):
            return ShaderException("bad_dispatch", pc=regs.pgm_addr, mnemonic="", encoding="",
                                   message=f"{msg} ({regs.source or 'dispatch'})")
        wg = regs.workgroup
        if any(int(x) <= 0 for x in wg):
            raise bad(f"workgroup size {tuple(wg)} has a zero dimension")
        if wg[0] * wg[1] * wg[2] > 1024:
            raise bad(f"workgroup size {tuple(wg)} exceeds 1024 work-items")
        if any(int(x) < 0 for x in regs.grid):
            raise bad(f"grid size {tuple(regs.grid)} is negative")
        if regs.user_sgpr_count > 16:
            raise bad(f"COMPUTE_PGM_RSRC2.USER_SGPR = {regs.user_sgpr_count} exceeds the 16 "
                      f"COMPUTE_USER_DATA registers")

    # -- workgroups ------------------------------------------------------------------------------
    def _wave_layout(self, regs: DispatchRegs, L: int) -> int:
        wg = regs.workgroup
        return -(-int(wg[0] * wg[1] * wg[2]) // L)

    def _chunks(self, regs: DispatchRegs, L: int):
        """Yield lists of workgroup ids (x, y, z) to run together."""
        counts = regs.workgroup_counts()
        nx, ny, nz = (int(c) for c in counts)
        total = nx * ny * nz
        if total == 0:
            return
        waves_per_wg = self._wave_layout(regs, L)
        if total == 1:
            self._check_scratch(regs, waves_per_wg)
            yield 0, 1
            return
        nv, na = self._vgpr_alloc(regs, L)
        per_lane = 4 * (nv + na) + 64
        lanes_cap = max(L * waves_per_wg, min(CHUNK_LANES, CHUNK_BYTES // per_lane))
        wgs_per_chunk = max(1, lanes_cap // (L * waves_per_wg))
        if self._check_scratch(regs, waves_per_wg):
            wgs_per_chunk = min(wgs_per_chunk, regs.scratch_waves // waves_per_wg)
        lin = 0
        while lin < total:
            n = min(wgs_per_chunk, total - lin)
            yield lin, n
            lin += n

    @staticmethod
    def _check_scratch(regs: DispatchRegs, waves_per_wg: int) -> bool:
        """Whether TMPRING WAVES limits the waves in flight; an error when it cannot hold one
        workgroup."""
        if regs.scratch_en and regs.scratch_waves > 0:
            if regs.scratch_waves < waves_per_wg:
                raise ShaderException(
                    "bad_dispatch", pc=regs.pgm_addr,
                    message=f"COMPUTE_TMPRING_SIZE.WAVES = {regs.scratch_waves} scratch wave slots cannot "
                            f"hold one workgroup of {waves_per_wg} waves ({regs.source or 'dispatch'})")
            return True
        return False

    @staticmethod
    @lru_cache(maxsize=64)
    def _wg_template(shape: tuple[int, int, int], L: int, comp: int) -> tuple[np.ndarray, np.ndarray]:
        """(packed work-item ids, valid lanes) of one workgroup of `shape`, (waves, L) each."""
        px, py, pz = shape
        n = px * py * pz
        nw = -(-n // L)
        t = np.arange(nw * L, dtype=np.int64).reshape(nw, L)
        valid = t < n
        ids = (t % px).astype(U32)
        if comp >= 1:
            ids |= ((t // px) % py).astype(U32) << U32(10)
        if comp >= 2:
            ids |= (t // (px * py)).astype(U32) << U32(20)
        ids = np.where(valid, ids, U32(0))
        ids.flags.writeable = False
        valid.flags.writeable = False
        return ids, valid

    def _vgpr_alloc(self, regs: DispatchRegs, L: int) -> tuple[int, int]:
        t = self.target
        total = regs.vgpr_count(L == 32, t.vgpr_granule_wave64, t.vgpr_granule_wave32)
        if t.has_agprs:       # unified file: AGPRs from RSRC3.ACCUM_OFFSET on (0 means 4)
            arch = min(regs.accum_offset(), total)
            return arch, total - arch
        return total, 0

    def _initial_batch(self, regs: DispatchRegs, L: int, chunk: tuple[int, int]) -> tuple[Batch, _Initial]:
        """The waves of one chunk as the SPI launches them (registers per the ABI)."""
        lin0, nwg = chunk
        counts = [int(c) for c in regs.workgroup_counts()]
        wgsz = [int(x) for x in regs.workgroup]
        grid = [int(x) for x in regs.grid]
        start = [int(x) for x in regs.start]
        nv, na = self._vgpr_alloc(regs, L)
        lin = lin0 + np.arange(nwg)
        gx = lin % counts[0]
        gy = (lin // counts[0]) % counts[1]
        gz = lin // (counts[0] * counts[1])
        # partial workgroups at the grid edge have fewer work-items in that dimension, and only
        # the waves those work-items need are launched
        px = np.minimum(wgsz[0], grid[0] - gx * wgsz[0])
        py = np.minimum(wgsz[1], grid[1] - gy * wgsz[1])
        pz = np.minimum(wgsz[2], grid[2] - gz * wgsz[2])
        nthreads = px * py * pz
        nwaves = -(-nthreads // L)
        wg_of_wave = np.repeat(np.arange(nwg), nwaves)
        wave_in_wg = np.arange(wg_of_wave.size) - np.repeat(np.cumsum(nwaves) - nwaves, nwaves)
        W = int(wg_of_wave.size)
        b = Batch(W, L, nv, na)
        b.wg = wg_of_wave
        # LDS: one block per workgroup of the chunk
        lds_size = max(int(regs.lds_bytes), regs.lds_size_rsrc2(self.target.lds_alloc_granule))
        blk = (lds_size + 15) & ~15
        b.wg_slot = (wg_of_wave * blk).astype(np.int64)[:, None]
        # work-item ids, packed in v0: X [9:0], Y [19:10], Z [29:20], from one template per
        # workgroup shape (all full groups share one; edge groups of a partial grid differ)
        if (px == px[0]).all() and (py == py[0]).all() and (pz == pz[0]).all():
            tmpl = [self._wg_template((int(px[0]), int(py[0]), int(pz[0])), L, regs.tidig_comp_cnt)]
            shape_idx = None
        else:
            shapes = np.stack([px, py, pz], axis=1)
            uniq, shape_idx = np.unique(shapes, axis=0, return_inverse=True)
            shape_idx = shape_idx.reshape(-1)
            tmpl = [self._wg_template(tuple(int(x) for x in u), L, regs.tidig_comp_cnt) for u in uniq]
        full = len(tmpl) == 1 and bool(tmpl[0][1].all())
        if len(tmpl) == 1:
            ids_t, valid_t = tmpl[0]
            b.v[0] = np.tile(ids_t, (nwg, 1))
            valid = None if full else np.tile(valid_t, (nwg, 1))
        else:
            offs = np.cumsum([0] + [t[0].shape[0] for t in tmpl[:-1]])
            rows = offs[shape_idx[wg_of_wave]] + wave_in_wg
            b.v[0] = np.concatenate([t[0] for t in tmpl])[rows]
            valid = np.concatenate([t[1] for t in tmpl])[rows]
        if full:
            b.s[:, 126:126 + b.nw] = U32(0xFFFFFFFF)
            b.em = np.ones((W, L), dtype=bool)
            b.exec_full = True
        else:
            b.set_exec(valid)
        # user SGPRs then system SGPRs (AMDGPUUsage "Initial Kernel Execution State")
        nuser = regs.user_sgpr_count
        if nuser:
            b.s[:, :nuser] = np.frombuffer(_user_words(regs.user_data, nuser), dtype=U32)
        k = nuser
        for axis, (on, gid) in enumerate(zip(regs.tgid_enable, (gx, gy, gz))):
            if on:
                b.s[:, k] = (gid[wg_of_wave] + start[axis]).astype(U32)
                k += 1
        if regs.tg_size_en:
            first = (wave_in_wg == 0).astype(U32) << U32(31)
            b.s[:, k] = first | (nwaves[wg_of_wave] & 0x3F).astype(U32)
            k += 1
        # scratch: wave slot offsets; gfx90a gets the offset in an SGPR, architected targets
        # get FLAT_SCRATCH = scratch base + offset (LLVM AMDGPUUsage, compute_pgm_rsrc2 bit 0)
        slot_bytes = int(regs.scratch_wave_bytes)
        wave_off = (np.arange(W, dtype=np.int64) * slot_bytes).astype(U64)
        if regs.scratch_en:
            if self.target.architected_flat_scratch:
                b.fscr = (U64(regs.scratch_base) + wave_off).astype(U64)
            else:
                b.s[:, k] = (wave_off & U64(0xFFFFFFFF)).astype(U32)
                k += 1
        # MODE from RSRC1: FLOAT_MODE [19:12] -> MODE[7:0], DX10_CLAMP 21 -> 8, IEEE 23 -> 9
        r1 = regs.rsrc1
        b.mode[:] = U32(((r1 >> 12) & 0xFF) | ((r1 >> 21) & 1) << 8 | ((r1 >> 23) & 1) << 9)
        b.pc = regs.pgm_addr
        return b, _Initial(wg_of_wave, nwg, max(blk * nwg, 16), lds_size, nuser)

    # -- scheduling -------------------------------------------------------------------------------
    def _schedule(self, prog: Program, rt: Runtime, b: Batch, r, wg_of_wave, nwg: int) -> None:
        """Run a chunk's waves to the end, after its first batch `b` stopped with event `r`
        (anything but END: the caller's first `_run_batch` covers a chunk that just runs)."""
        live = arrived = None          # live / arrived waves per workgroup, made when needed
        active: list[Batch] = []
        waiting: list[Batch] = []
        cancel = rt.cancel
        while True:
            last = None
            if r is None:                  # slice exhausted
                active.append(b)
                last = b
            elif r is END:
                if not active and not waiting:
                    return                 # the last waves ended
                if live is None:
                    live, arrived = np.bincount(wg_of_wave, minlength=nwg), np.zeros(nwg, dtype=np.int64)
                np.subtract.at(live, b.wg, 1)
                # workgroups waiting at a barrier may now be complete
                waiting, active = self._release(waiting, active, live, arrived)
            elif r is BARRIER:
                if live is None:
                    live, arrived = np.bincount(wg_of_wave, minlength=nwg), np.zeros(nwg, dtype=np.int64)
                np.add.at(arrived, b.wg, 1)
                waiting.append(b)
                waiting, active = self._release(waiting, active, live, arrived)
            elif isinstance(r, Branch):
                if r.cond == "execz" and r.target > r.fallthrough and prog.exec_safe(r.fallthrough, r.target, rt):
                    # the skipped block only does EXEC-masked work: waves whose EXEC is zero
                    # run it as no-ops instead of splitting the batch
                    b.pc = r.fallthrough
                    active.append(b)
                else:
                    taken = np.flatnonzero(r.taken)
                    other = np.flatnonzero(~r.taken)
                    t1 = b.take(taken)
                    t1.pc = r.target
                    t2 = b.take(other)
                    t2.pc = r.fallthrough
                    active += [t1, t2]
            elif isinstance(r, GprIdx):     # waves index different VGPRs: one batch per index
                for u in np.unique(r.index):
                    nb = b.take(np.flatnonzero(r.index == u))
                    nb.gpr = (int(u), r.mode if r.mode is not None else (b.gpr[1] if b.gpr else 0))
                    active.append(nb)
            elif isinstance(r, MultiJump):
                tg = r.targets
                for u in np.unique(tg):
                    nb = b.take(np.flatnonzero(tg == u))
                    nb.pc = int(u)
                    active.append(nb)
            else:
                raise AssertionError(f"unexpected scheduler event {r!r}")  # pragma: no cover
            if cancel.is_set():
                raise DispatchCancelled("dispatch cancelled")
            if not active:                 # cannot happen: the last arrival releases its group
                raise AssertionError("every live wave waits at a barrier no group can pass")
            if len(active) == 1:
                b = active.pop()
            else:
                active = self._merge(active)
                # lowest PC first (reconvergence); after a slice ran out, let another batch go
                cand = active if last is None or len(active) == 1 else [x for x in active if x is not last] or active
                b = min(cand, key=_pc_of)
                active.remove(b)
            r, _entry = self._run_batch(prog, rt, b)

    @staticmethod
    def _release(waiting, active, live, arrived):
        """Release the waves of every workgroup whose live waves have all reached the barrier
        (a waiting batch may mix workgroups: it is split), and reset their arrival counts."""
        if not waiting:
            return waiting, active
        complete = (arrived >= live) & (arrived > 0)
        if not complete.any():
            return waiting, active
        still = []
        for wb in waiting:
            go = complete[wb.wg]
            if go.all():
                active.append(wb)
            elif go.any():
                active.append(wb.take(np.flatnonzero(go)))
                still.append(wb.take(np.flatnonzero(~go)))
            else:
                still.append(wb)
        arrived[complete] = 0
        return still, active

    @staticmethod
    def _merge(active: list[Batch]) -> list[Batch]:
        if len(active) < 2:
            return active
        by_pc: dict[tuple, list[Batch]] = {}
        for x in active:
            by_pc.setdefault((x.pc, x.gpr), []).append(x)
        if len(by_pc) == len(active):
            return active
        out = []
        for group in by_pc.values():
            out.append(group[0] if len(group) == 1 else Batch.concat(group))
        return out

    @staticmethod
    def _gpr_idx(b: Batch, r: GprIdx) -> bool:
        """Apply a VGPR-indexing change; False when the waves' indices differ (split first)."""
        if not r.on:
            b.gpr = None
            return True
        off, mode = b.gpr if b.gpr is not None else (0, 0)
        if r.index is not None:
            if b.W > 1 and not (r.index == r.index[0]).all():
                return False
            off = int(r.index[0])
        if r.mode is not None:
            mode = r.mode
        b.gpr = (off, mode)
        return True

    @staticmethod
    def _failure(prog: Program, rt: Runtime, pc: int, kind: str, why: str) -> ShaderException:
        """A ShaderException naming the instruction at `pc` (as llvm-objdump prints it)."""
        inst = prog.code[pc].inst if pc in prog.code else None
        text = rt.render(inst) if inst else "the instruction"
        enc = inst.encoding if inst else ""
        return ShaderException(kind, pc=pc, mnemonic=inst.name if inst else "", encoding=enc,
                               message=f"{text} at PC 0x{pc:x} (encoding {enc or '?'}, target {rt.target.name}) {why}")

    def _run_indexed(self, prog: Program, rt: Runtime, b: Batch):
        """Run while GFX9 VGPR indexing is on (until s_set_gpr_idx_off or a control event).
        b.pc follows every instruction, so an error names the right one."""
        n = 0
        try:
            limit = _slice(b.W * b.L)
            while n < limit:
                pc = b.pc
                off, mode = b.gpr
                e = prog.indexed(pc, off, mode, rt)
                n += 1
                if e.fn is None:
                    b.pc = e.next
                    continue
                r = e.fn(b, rt)
                if r is None:
                    b.pc = e.next
                elif r.__class__ is int:
                    b.pc = r
                elif r.__class__ is GprIdx:
                    b.pc = e.next
                    if not self._gpr_idx(b, r):
                        return r, e                 # the waves' indices differ: split first
                    if b.gpr is None:
                        return None, None           # indexing off: back to the plain loop
                else:
                    if r is BARRIER:
                        b.pc = e.next
                    return r, e
            return None, None
        finally:
            rt.instructions += n
            rt.lane_instructions += n * b.W * b.L

    def _run_batch(self, prog: Program, rt: Runtime, b: Batch):
        """Run `b` until it ends, branches divergently, reaches a barrier or uses its slice."""
        code = prog.code
        pc = b.pc
        n = 0
        lanes = b.W * b.L
        trace = self.trace
        limit = SLICE if lanes <= _SLICE_FULL_LANES else _slice(lanes)
        try:
            if b.gpr is not None:
                return self._run_indexed(prog, rt, b)
            while n < limit:
                e = code.get(pc)
                if e is None:
                    e = prog.decode(pc, rt)
                fn = e.fn
                n += 1
                if fn is None:
                    pc = e.next
                    continue
                r = fn(b, rt)
                if trace is not None:
                    trace(e.inst, b)
                if r is None:
                    pc = e.next
                elif r.__class__ is int:
                    pc = r
                elif r.__class__ is GprIdx:
                    pc = e.next
                    if not self._gpr_idx(b, r):
                        b.pc = pc
                        return r, e
                    if b.gpr is not None:
                        b.pc = pc
                        return self._run_indexed(prog, rt, b)
                else:
                    if r is BARRIER:
                        b.pc = e.next
                    else:
                        b.pc = pc
                    return r, e
            b.pc = pc
            return None, None
        except IndexError as exc:
            if not _register_overflow(exc, b):
                raise self._failure(prog, rt, b.pc if b.gpr is not None else pc, "internal_error",
                                    f"made the simulated shader core fail: IndexError: {exc}") from exc
            raise self._failure(prog, rt, b.pc if b.gpr is not None else pc, "illegal_instruction",
                                "addresses a register outside the wave's allocation (COMPUTE_PGM_RSRC1 VGPRs / "
                                f"RSRC3 ACCUM_OFFSET): {exc}") from None
        except (ShaderException, DispatchCancelled, VMFault):
            raise
        except Exception as exc:
            raise self._failure(prog, rt, b.pc if b.gpr is not None else pc, "internal_error",
                                f"made the simulated shader core fail: {type(exc).__name__}: {exc}") from exc
        finally:
            rt.instructions += n
            rt.lane_instructions += n * lanes
