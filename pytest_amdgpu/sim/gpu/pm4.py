"""The PM4 engine: the compute micro-engine (MEC) front end of a PM4 user queue.

It fetches type-3 packets from the ring (64-bit monotonic dword read/write pointers; the write
pointer is the doorbell value; ring offset = pointer mod ring dwords, packets may wrap),
executes each with its memory effect through the process's GPUVM, and reports the read pointer
(64-bit, dwords) at rptr_addr: a turn fetches a batch of complete packets, runs them, and
writes the pointer past the fetched batch once, like the CP's block-wise RPTR reporting (the
ring mechanics are common.RingProcessor's, shared with SDMA).
Indirect buffers run from memory (IB1 from the ring, IB2 from an IB1; CHAIN replaces the
current IB). Per-queue register state (SET_SH_REG, SET_UCONFIG_REG, WRITE_DATA/COPY_DATA to a
register) feeds DISPATCH_DIRECT, which runs on the shader core.

Packets are read with part D's layouts (`pytest_amdgpu.packets.pm4`, one source of truth for
building and parsing; fastdecode.py compiles field readers from them). A packet that does not
decode (bad type, unknown opcode, a length that does not match the target's form, a reserved
field value) is malformed: the engine reports a HW exception with D's reason and the queue
stops, as the CP raises CP_BAD_OPCODE.
"""

from __future__ import annotations

import array
from itertools import islice

from ...packets import pm4 as P
from ...packets.common import PacketDecodeError
from .common import (
    COMPARE_NAMES,
    MASK32,
    PREFETCH_DW,
    Location,
    QueueError,
    QueueProcessor,
    RingProcessor,
    Status,
    atomic_packet,
    compare,
    read_words,
)
from .dispatch import EC_REGISTER_INVALID, DispatchSource, ShDispatch
from .fastdecode import PM4Reader, reader_for, strict_fields

SH_BASE, SH_END = P.SH_REG_WINDOW                 # [0x2C00, 0x3000)
UCONFIG_BASE, UCONFIG_END = P.UCONFIG_REG_WINDOW  # [0xC000, 0xC400)
SH_REGS = SH_END - SH_BASE                        # registers in each window
UCONFIG_REGS = UCONFIG_END - UCONFIG_BASE
MAX_IB_DEPTH = 2          # IB1 from the ring, IB2 from an IB1 (the CP's two IB levels)
KNOWN_HEADERS_LIMIT = 4096    # headers remembered per reader (as PM4Reader bounds its cache)
# Status members as globals: an Enum attribute lookup costs ~0.2 µs on Python 3.11
_IDLE, _PROGRESS, _WAIT = Status.IDLE, Status.PROGRESS, Status.WAIT
_PredExec = P.PredExec


def packet_dwords(header: int) -> int:
    """Dwords of the packet starting with `header` (type 3: COUNT + 2; NOP 0x3FFF: 1;
    type 2: 1). Other types decode as errors later; count them as one dword."""
    t = header >> 30
    if t == 3:
        count = (header >> 16) & 0x3FFF
        if count == 0x3FFF and ((header >> 8) & 0xFF) == 0x10:
            return 1
        return count + 2
    return 1


class _Frame:
    """An indirect buffer being executed: next byte address, end address, IB level."""

    __slots__ = ("addr", "end", "level", "skip")

    def __init__(self, addr: int, end: int, level: int) -> None:
        self.addr, self.end, self.level = addr, end, level
        self.skip = 0                        # PRED_EXEC dwords still to skip in this IB

    def where(self, addr: int) -> str:
        return f"PM4 packet at IB{self.level} address {addr:#x}"


_KNOWN: dict[int, tuple[PM4Reader, dict[int, tuple]]] = {}


def _known_headers(reader: PM4Reader) -> dict[int, tuple]:
    """Header dword -> (handler, field reader, packet class, dwords) for the headers `reader`
    has read, shared by the executors of its target. The handler is None for a packet that
    does nothing and whose reader checks no field (PM4Processor only counts it)."""
    hit = _KNOWN.get(id(reader))
    if hit is None or hit[0] is not reader:
        hit = _KNOWN[id(reader)] = (reader, {})
    return hit[1]


class PM4Executor:
    """Executes PM4 packets for one queue: register state, the IB stack, PRED_EXEC skipping.

    Shared by PM4 queues and by AQL's vendor-specific PM4-IB packets. State persists between
    turns, so a packet that has to wait resumes exactly where it stopped. The SH and UCONFIG
    register files are lists indexed by the offset in their window (all registers start at
    0), so SET_SH_REG is one slice store and DISPATCH_DIRECT reads its registers at once.
    """

    def __init__(self, proc: QueueProcessor) -> None:
        self.proc = proc
        self.vm = proc.vm
        self.target = proc.target
        self.engine = proc.engine
        self.reader: PM4Reader = reader_for(PM4Reader, proc.target)
        self.known = _known_headers(self.reader)
        self.sh: list[int] = [0] * SH_REGS              # value by SH register offset
        self.uconfig: list[int] = [0] * UCONFIG_REGS    # value by UCONFIG register offset
        self.sh_run = self.reader.register_runs[P.SetShReg]       # writes SET_SH_REG runs
        self.dispatch = ShDispatch(proc.target, proc.queue)   # DISPATCH_DIRECT's registers
        self.frames: list[_Frame] = []
        self.atomic_return = 0                 # last ATOMIC_MEM returned value (COPY_DATA src 6)
        self.wait_reason = ""
        self.loc: Location | None = None       # where the current packet is

    @property
    def where(self) -> str:
        """Location of the current packet, for messages (formatted only when needed)."""
        if self.loc is None:
            return "PM4 packet"
        fn, off = self.loc
        return fn(off)

    # -- parsing --------------------------------------------------------------------------------
    def parse(self, words: list[int], limit: int, where, skip: int, base: int = 0,
              scale: int = 1) -> tuple[list, int, int]:
        """Decode up to `limit` complete packets from `words`.

        Returns ([(handler, fields, location, offset, dwords)], dwords consumed, dwords still
        to skip): `handler(executor, fields, ib_level)` runs the packet; a location is (where,
        base + offset * scale), formatted by `where` only when a message needs it. `skip` is
        the PRED_EXEC skip pending for this stream. A malformed packet raises QueueError
        unless good packets precede it (they run first; the bad one is met again on the next
        call).
        """
        out: list[tuple] = []
        append = out.append
        n = len(words)
        off = 0
        if skip and limit > 0:
            off = min(skip, n)
            skip -= off
        get = self.known.get
        pred_exec = P.PredExec
        while off < n and len(out) < limit:
            hit = get(words[off])
            if hit is not None and off + hit[3] <= n:
                handler, fn, cls, ndw = hit
                try:
                    fields = fn(words, off, ndw)
                except LookupError:          # a reserved field value: the reader names it
                    hit = None
            else:
                hit = None
            if hit is None:
                got = self._read(words, off, out, where, base + off * scale)
                if got is None:
                    break
                handler, fields, cls, ndw = got
            append((handler or _nop, fields, (where, base + off * scale), off, ndw))
            off += ndw
            if cls is pred_exec and not fields[1] & 1:
                # One simulated XCC (logical XCC 0): the governed dwords run only when its bit
                # (VIRTUAL_XCC_ID_SELECT bit 0) is selected. They are skipped here unless the
                # batch is full (then the next call skips them).
                skip = fields[0]
                if len(out) < limit:
                    k = min(skip, n - off)
                    off += k
                    skip -= k
        return out, off, skip

    def _read(self, words: list[int], off: int, out: list, where, pos: int) -> tuple | None:
        """(handler, fields, class, dwords) of the packet at `words[off]` through the reader
        (a header not met before, or a reserved field value); None when the packet is
        incomplete, or malformed after good packets (`out`): the batch ends before it."""
        ndw = packet_dwords(words[off])
        if off + ndw > len(words):
            return None
        try:
            cls, fields, ndw = self.reader.read(words, off)
        except PacketDecodeError as e:
            if out:
                return None
            raise QueueError(f"{where(pos)}: malformed packet (header 0x{words[off]:08x}): "
                             f"{e.reason}") from None
        self._learn(words[off])
        return _HANDLERS[cls], fields, cls, ndw

    def _learn(self, header: int) -> None:
        """Remember what `header` (just read without error) selects, so later packets with it
        skip the reader's lookups. Only headers whose length packet_dwords gives alike."""
        known = self.known
        if header in known or len(known) >= KNOWN_HEADERS_LIMIT:
            return
        hit = self.reader._resolve(header)
        if hit is not None and hit[2] == packet_dwords(header):
            cls, fn, ndw = hit
            handler = _HANDLERS[cls]
            if handler in _NO_OPS and not strict_fields(fn):
                handler = None           # nothing to run and nothing to check: only counted
            known[header] = (handler, fn, cls, ndw)

    # -- indirect buffers ---------------------------------------------------------------------
    def push_ib(self, addr: int, size_dw: int, level: int) -> None:
        if level > MAX_IB_DEPTH:
            raise QueueError(f"{self.where}: INDIRECT_BUFFER nested {level} levels deep; the CP "
                             f"executes at most {MAX_IB_DEPTH} levels (IB1, IB2)")
        self.frames.append(_Frame(addr, addr + 4 * size_dw, level))

    def run_frames(self, budget: int) -> tuple[Status, int]:
        """Execute packets from the IB stack until it is empty (IDLE), a packet waits (WAIT)
        or the budget is spent (PROGRESS). Returns (status, packets executed)."""
        done = 0
        frames = self.frames
        vm = self.vm
        while frames:
            if done >= budget:
                return _PROGRESS, done
            f = frames[-1]
            if f.addr >= f.end:
                frames.pop()
                continue
            base, level = f.addr, f.level
            words = read_words(vm, base, min((f.end - base) >> 2, PREFETCH_DW))
            where = f.where
            pkts, used, skip = self.parse(words, budget - done, where, f.skip, base, 4)
            if not pkts and used == 0:
                need = packet_dwords(words[0])
                if base + 4 * need > f.end:
                    raise QueueError(f"{where(base)}: packet (header 0x{words[0]:08x}) of {need} "
                                     f"dwords runs past the end of its indirect buffer at "
                                     f"{f.end:#x}")
                words = read_words(vm, base, need)
                pkts, used, skip = self.parse(words, 1, where, f.skip, base, 4)
            if not pkts:                     # only skipped dwords
                f.addr = base + 4 * used
                f.skip = skip
                continue
            for handler, fields, here, off, ndw in pkts:
                self.loc = here
                if not handler(self, fields, level):
                    f.addr = base + 4 * off
                    f.skip = 0
                    return _WAIT, done
                f.addr = base + 4 * (off + ndw)
                done += 1
                if frames[-1] is not f:      # an IB was pushed or chained: it runs first
                    f.skip = 0               # the rest of this chunk is parsed again later
                    break
            else:
                f.addr = base + 4 * used     # include trailing skipped dwords
                f.skip = skip
        return _IDLE, done

    # -- one packet ----------------------------------------------------------------------------
    def execute(self, pkt: tuple, level: int) -> bool:
        """Execute one read packet ((class, fields) from the reader). False = it must wait;
        re-run it later."""
        cls, fields = pkt
        return _HANDLERS[cls](self, fields, level)

    # -- helpers -------------------------------------------------------------------------------
    def read_reg(self, reg: int) -> int:
        """A register read by WAIT_REG_MEM / COPY_DATA (absolute dword address)."""
        if SH_BASE <= reg < SH_END:
            return self.sh[reg - SH_BASE]
        if UCONFIG_BASE <= reg < UCONFIG_END:
            return self.uconfig[reg - UCONFIG_BASE]
        raise QueueError(f"{self.where}: register 0x{reg:x} is outside the SH and UCONFIG "
                         "windows a user queue may access (privileged register)")

    def write_reg(self, reg: int, value: int) -> None:
        """A register write by WRITE_DATA / COPY_DATA (absolute dword address)."""
        if SH_BASE <= reg < SH_END:
            self.sh[reg - SH_BASE] = value & MASK32
        elif UCONFIG_BASE <= reg < UCONFIG_END:
            self.uconfig[reg - UCONFIG_BASE] = value & MASK32
        else:
            raise QueueError(f"{self.where}: write to register 0x{reg:x} outside the SH and "
                             "UCONFIG windows (privileged register access)")

    def interrupt(self, ctx_id: int) -> None:
        """A CP end-of-pipe interrupt carrying `ctx_id` (context_id0, 32 bits)."""
        q = self.proc.queue
        q.process.signal_interrupt(self.proc.device, "cp_eop", ctx_id & MASK32)


# -- handlers: (executor, fields, level) -> done ----------------------------------------------
# `fields` is the tuple fastdecode.PM4_FIELDS names for the packet class (plus the tail).

def _nop(ex: PM4Executor, f: tuple, level: int) -> bool:
    return True


def _write_data(ex: PM4Executor, f: tuple, level: int) -> bool:
    dst, one_addr, addr, data = f
    if dst == 0:                                       # memory-mapped register
        reg = addr & 0x3FFFF
        for i, v in enumerate(data):
            ex.write_reg(reg if one_addr else reg + i, v)
        return True
    if dst in (1, 2, 5):                               # memory (GRBM sync, TC/L2, direct)
        addr &= ~3
        if one_addr:
            ex.vm.write_u32(addr, data[-1])
        elif len(data) == 1:
            ex.vm.write_u32(addr, data[0])
        else:
            ex.vm.write(addr, array.array("I", data).tobytes())
        return True
    raise QueueError(f"{ex.where}: WRITE_DATA DST_SEL {dst} "
                     f"({'GDS' if dst == 3 else 'ADC persistent state'}) is not available to a "
                     "compute user queue in the simulator")


def _release_mem(ex: PM4Executor, f: tuple, level: int) -> bool:
    dst_sel, int_sel, data_sel, addr, data, int_ctxid = f
    if dst_sel > 1:
        raise QueueError(f"{ex.where}: RELEASE_MEM DST_SEL {dst_sel} (queue write-pointer "
                         "register) is not available to a user compute queue")
    vm = ex.vm
    if data_sel == 1:
        vm.write_u32(addr & ~3, data & MASK32)
    elif data_sel == 2:
        vm.write_u64(addr & ~7, data)
    elif data_sel in (3, 4):
        # 3: GPU clock counter. 4: "system clock counter" (nvd.h, PAL) or "CP perfcounter hi/lo"
        # (kfd_pm4_headers_ai.h, facts-pm4.md §8 #4): both write the simulated 100 MHz clock.
        vm.write_u64(addr & ~7, ex.engine.clock())
    elif data_sel == 5:
        raise QueueError(f"{ex.where}: RELEASE_MEM DATA_SEL 5 (store GDS data) needs GDS, which "
                         "a simulated user queue does not have")
    if not int_sel:
        return True
    if int_sel in (1, 2, 4):
        ex.interrupt(int_ctxid)
    elif int_sel in (5, 6):
        # Conditional interrupt: send int_ctxid when the 32/64-bit value at the address equals
        # CMP_DATA (DATA_LO/HI hold CMP_DATA for these selects). Semantics inferred from the
        # enum names (int_sel__mec_release_mem__conditionally_send_int_ctxid_based_on_*).
        if int_sel == 5:
            hit = vm.read_u32(addr & ~3) == data & MASK32
        else:
            hit = vm.read_u64(addr & ~7) == data
        if hit:
            ex.interrupt(int_ctxid)
    return True


def _wait_reg_mem(ex: PM4Executor, f: tuple, level: int) -> bool:
    function, mem_space, operation, addr, reference, mask = f
    if operation == 1:
        raise QueueError(f"{ex.where}: WAIT_REG_MEM OPERATION 1 (write-wait-write register) is "
                         "a graphics-ring operation, not available on a compute queue")
    if mem_space == 1:
        addr &= ~3
        value = ex.vm.read_u32(addr)
    else:
        addr &= 0x3FFFF
        value = ex.read_reg(addr)
    if compare(function, value, mask, reference):
        return True
    where = f"memory 0x{addr:x}" if mem_space == 1 else f"register 0x{addr:x}"
    ex.wait_reason = (f"WAIT_REG_MEM {where}: (0x{value:x} & 0x{mask:x}) "
                      f"{COMPARE_NAMES[function]} 0x{reference:x} is false")
    return False


def _indirect_buffer(ex: PM4Executor, f: tuple, level: int) -> bool:
    addr, size, chain, valid = f
    if not valid or size == 0:
        return True                      # VALID clear or empty: nothing to run
    if chain and level > 0:
        ex.frames.pop()                  # CHAIN: the new IB replaces the current one
        ex.push_ib(addr, size, level)
    else:
        ex.push_ib(addr, size, level + 1)
    return True


def _event_write(ex: PM4Executor, f: tuple, level: int) -> bool:
    return True     # partial flushes and cache events order work; the simulator is in order


def _acquire_mem(ex: PM4Executor, f: tuple, level: int) -> bool:
    return True     # caches are coherent in the simulator; the form was checked when read


def _set_sh_reg(ex: PM4Executor, f: tuple, level: int) -> bool:
    off, values = f
    end = off + len(values)
    if end > SH_REGS:
        _window_error(ex, "SH", off, values)
    ex.sh[off:end] = values
    return True


def _set_uconfig_reg(ex: PM4Executor, f: tuple, level: int) -> bool:
    off, values = f
    end = off + len(values)
    if end > UCONFIG_REGS:
        _window_error(ex, "UCONFIG", off, values)
    ex.uconfig[off:end] = values
    return True


def _window_error(ex: PM4Executor, window: str, off: int, values: tuple) -> None:
    raise QueueError(f"{EC_REGISTER_INVALID}: {ex.where}: SET_{window}_REG offset 0x{off:x} "
                     f"+ {len(values)} registers leaves the {window} register window")


def _dispatch_source(loc: Location | None) -> str:
    if loc is None:
        return "DISPATCH_DIRECT (PM4 packet)"
    fn, off = loc
    return f"DISPATCH_DIRECT ({fn(off)})"


def _dispatch_direct(ex: PM4Executor, f: tuple, level: int) -> bool:
    regs = ex.dispatch.regs(ex.sh, f, DispatchSource(_dispatch_source, ex.loc))
    if regs is not None:                 # an empty grid launches no wave
        proc = ex.proc
        ex.engine.run_shader(proc, regs, interrupt=proc.sq_interrupt)
    return True


def _copy_data(ex: PM4Executor, f: tuple, level: int) -> bool:
    src_sel, dst_sel, is64, src_addr, dst_addr = f
    align = 8 if is64 else 4
    if src_sel == 0:
        reg = src_addr & 0x3FFFF
        v = ex.read_reg(reg)
        if is64:
            v |= ex.read_reg(reg + 1) << 32
    elif src_sel in (1, 2):
        a = src_addr & ~(align - 1)
        v = ex.vm.read_u64(a) if is64 else ex.vm.read_u32(a)
    elif src_sel == 5:
        v = src_addr
    elif src_sel == 6:
        v = ex.atomic_return
    elif src_sel in (9, 10):
        v = ex.engine.clock()            # GPU clock and system clock: the 100 MHz counter
    else:
        raise QueueError(f"{ex.where}: COPY_DATA SRC_SEL {src_sel} (GDS or perfcounter source) "
                         "is not modelled by the simulator")
    if not is64:
        v &= MASK32
    if dst_sel == 0:
        reg = dst_addr & 0x3FFFF
        ex.write_reg(reg, v)
        if is64:
            ex.write_reg(reg + 1, v >> 32)
    elif dst_sel in (2, 5):
        a = dst_addr & ~(align - 1)
        (ex.vm.write_u64 if is64 else ex.vm.write_u32)(a, v)
    else:
        raise QueueError(f"{ex.where}: COPY_DATA DST_SEL {dst_sel} (GDS or perfcounter) is not "
                         "modelled by the simulator")
    return True


def _dma_data(ex: PM4Executor, f: tuple, level: int) -> bool:
    src_sel, dst_sel, src, dst, count, sas, das, saic, daic = f
    if dst_sel not in (0, 3) or das:
        raise QueueError(f"{ex.where}: DMA_DATA destination DST_SEL {dst_sel} DAS {das} (GDS "
                         "or register) is not modelled; use memory (DST_SEL 0 or 3, DAS 0)")
    if count == 0:
        return True
    vm = ex.vm
    if src_sel == 2:                                    # fill with the DATA dword
        value = src & MASK32
        if daic:                                        # destination does not increment
            vm.write_u32(dst, value)
        else:
            pattern = value.to_bytes(4, "little")
            vm.write(dst, (pattern * (count // 4 + 1))[:count])
        return True
    if src_sel not in (0, 3) or sas:
        raise QueueError(f"{ex.where}: DMA_DATA source SRC_SEL {src_sel} SAS {sas} (GDS or "
                         "register) is not modelled; use memory (SRC_SEL 0/3) or DATA (2)")
    if saic and daic:
        vm.write(dst, vm.read(src, 4))
    elif saic:                                          # source does not increment
        word = vm.read(src, 4)
        vm.write(dst, (word * (count // 4 + 1))[:count])
    elif daic:                                          # destination does not increment
        data = vm.read(src, count)
        vm.write(dst, data[-4:] if count >= 4 else data)
    else:
        vm.write(dst, vm.read(src, count))
    return True


def _atomic_mem(ex: PM4Executor, f: tuple, level: int) -> bool:
    tc_op, command, addr, src, cmp = f
    old = atomic_packet(ex, addr, tc_op, src, cmp, command == 1, f"{ex.where}: ATOMIC_MEM")
    if old is None:                      # COMMAND 1: loop until the compare succeeds
        return False
    ex.atomic_return = old
    return True


def _pred_exec(ex: PM4Executor, f: tuple, level: int) -> bool:
    return True                          # applied while parsing (PM4Executor.parse)


# handlers that do nothing with their packet (their fields are still checked when read)
_NO_OPS = frozenset({_nop, _event_write, _acquire_mem})

_HANDLERS = {
    P.Nop: _nop,
    P.Type2: _nop,
    P.WriteData: _write_data,
    P.ReleaseMem: _release_mem,
    P.WaitRegMem: _wait_reg_mem,
    P.IndirectBuffer: _indirect_buffer,
    P.EventWrite: _event_write,
    P.AcquireMem: _acquire_mem,
    P.SetShReg: _set_sh_reg,
    P.SetUconfigReg: _set_uconfig_reg,
    P.DispatchDirect: _dispatch_direct,
    P.CopyData: _copy_data,
    P.DmaData: _dma_data,
    P.AtomicMem: _atomic_mem,
    P.PredExec: _pred_exec,
}


class PM4Processor(RingProcessor):
    """A PM4 compute queue: ring fetch (pointers in dwords), IB execution, read-pointer
    write-back (RingProcessor).

    A turn decodes the fetched ring dwords and runs each packet as it is decoded
    (_run_batch), with RingProcessor's semantics. Packets fetched but not run yet (after one
    that waits, raises or calls an IB) wait in `pending` as PM4Executor.parse returns them:
    (handler, fields, location, offset, dwords); _run_pending runs them first. It has its
    own `run`, so RingProcessor's parse / execute hooks (the SDMA engine's) are not used.
    """

    kind = "pm4"
    ENGINE = "PM4"
    UNIT = 4
    UNIT_NAME = "dword"
    # CP_HQD_PQ_RPTR is a dword offset into the ring, and that is what RPTR_REPORT writes back:
    # 32 bits wrapping at the queue size while the write pointer is 64-bit (kfdtest
    # PM4Queue::Rptr reads it as unsigned int and compares it with Wptr64 % ring dwords)
    RPTR_WRAPS = True

    def __init__(self, engine, queue) -> None:
        super().__init__(engine, queue)
        self.ex = PM4Executor(self)
        self.ib_frames = self.ex.frames
        self.skip = 0             # PRED_EXEC dwords of the ring still to skip

    def sq_interrupt(self, ctx_id: int) -> None:
        """s_sendmsg MSG_INTERRUPT from a wave of this queue (24 bits, facts-kfd.md §4 I3)."""
        self.queue.process.signal_interrupt(self.device, "sq_msg", ctx_id & 0xFFFFFF)

    def packet_dwords(self, words: list[int], off: int) -> int:
        return packet_dwords(words[off])

    def run_ib(self, budget: int) -> tuple[Status, int]:
        ex = self.ex
        status, k = ex.run_frames(budget)
        if status is _WAIT:
            self.wait_reason = ex.wait_reason
        return status, k

    def run(self, budget: int) -> Status:
        """RingProcessor.run, with the ring's packets decoded and run in one pass
        (_run_batch): the same order, budget, waits, counts and read-pointer reports."""
        pending = self.pending
        ibs = self.ib_frames
        q = self.queue
        done = 0
        try:
            while done < budget:
                if ibs:
                    status, k = self.run_ib(budget - done)
                    self.completed += k
                    if status is not _IDLE:
                        return status
                elif pending:
                    status, k = self._run_pending(budget - done)
                    if status is not None:
                        return status
                elif q.doorbell_value <= self.rptr:
                    return _IDLE
                else:
                    got = self._ring_words()
                    rptr = self.rptr
                    status, k = self._run_batch(got[0], budget - done)
                    if self.rptr == rptr and status is None:
                        status, k = self._run_long_packet(*got)
                    if status is not None:
                        return status
                done += k
            return _PROGRESS
        finally:
            if self.rptr != self.reported:
                self._report_rptr()

    def _run_pending(self, budget: int) -> tuple[Status | None, int]:
        """Run packets fetched before (a waiting packet first): (WAIT or None, packets
        completed). Stops after a packet that pushed an IB (it runs next)."""
        pending = self.pending
        ibs = self.ib_frames
        ex = self.ex
        n = 0                                    # packets of `pending` completed
        try:
            for handler, fields, loc, _off, _ndw in islice(pending, budget):
                ex.loc = loc
                if not handler(ex, fields, 0):
                    self.wait_reason = ex.wait_reason
                    return _WAIT, n
                n += 1
                if ibs:                          # a pushed IB runs before the next packet
                    break
            return None, n
        finally:
            # handlers never touch `pending`; the completed packets leave it now
            if n == len(pending):
                pending.clear()
            else:
                for _ in range(n):
                    pending.popleft()
            self.completed += n

    def _run_long_packet(self, words: list[int], avail_dw: int) -> tuple[Status | None, int]:
        """Run the first packet of the ring when `words` (the dwords fetched at once) do not
        hold all of it; IDLE while it is not all published."""
        rptr = self.rptr
        words = self._whole_packet(words, avail_dw)
        if words is None:
            return _IDLE, 0
        status, k = self._run_batch(words, 1)
        if self.rptr == rptr and status is None:
            return _IDLE, 0
        return status, k

    def _run_batch(self, words: list[int], limit: int) -> tuple[Status | None, int]:
        """Decode the packets of `words` (ring dwords at the read pointer), running each as it
        is decoded: what PM4Executor.parse would fetch (at most `limit` packets, up to a
        malformed one that follows good ones, PRED_EXEC skips applied), then run in order.

        Returns (WAIT or None, packets completed) and sets the read pointer past the batch.
        When a packet waits, raises, or pushes an IB, the rest of the batch stays fetched in
        `pending` (a waiting or raising packet first: it runs again), as if the whole batch
        had been parsed first. Consecutive SET_SH_REG packets are written by one call
        (PM4Reader.register_runs; one that it stops at runs its usual way and reports its
        error), and packets that do nothing (and have no field to check) are only counted.
        """
        ex = self.ex
        rptr = self.rptr
        get = ex.known.get
        n = len(words)
        off = 0
        skip = self.skip
        if skip:
            off = min(skip, n)
            skip -= off
        k = 0                                    # packets completed
        while off < n and k < limit:
            hit = get(words[off])
            if hit is not None and off + hit[3] <= n:
                handler, fn, cls, ndw = hit
                if handler is None:              # nothing to run or check
                    k += 1
                    off += ndw
                    continue
                if handler is _set_sh_reg:       # a run of SET_SH_REG, written at once
                    j, end = ex.sh_run(words, off, n, limit - k, ex.sh, SH_REGS)
                    if j:
                        k += j
                        off = end
                        continue
                try:
                    fields = fn(words, off, ndw)
                except LookupError:              # a reserved field value: D's decoder names it
                    got = ex._read(words, off, k, self.where_ring, rptr + off)
                    if got is None:
                        break
                    handler, fields, cls, ndw = got
            else:                                # not met before, or not complete
                got = ex._read(words, off, k, self.where_ring, rptr + off)
                if got is None:
                    break
                handler, fields, cls, ndw = got
            ex.loc = loc = (self.where_ring, rptr + off)
            try:
                ok = handler(ex, fields, 0)
            except BaseException:
                self._keep(words, off, limit - k, skip, (handler, fields, loc, off, ndw))
                self.completed += k
                raise
            if not ok:
                self.wait_reason = ex.wait_reason
                self._keep(words, off, limit - k, skip, (handler, fields, loc, off, ndw))
                self.completed += k
                return _WAIT, k
            k += 1
            off += ndw
            if cls is _PredExec and not fields[1] & 1:
                # as PM4Executor.parse: the governed dwords are not for this XCC
                skip = fields[0]
                if k < limit:
                    j = min(skip, n - off)
                    off += j
                    skip -= j
            if self.ib_frames:                   # a pushed IB runs before the next packet
                self._keep(words, off, limit - k, skip)
                self.completed += k
                return None, k
        self.rptr = rptr + off
        self.skip = skip
        self.completed += k
        return None, k

    def _keep(self, words: list[int], off: int, limit: int, skip: int,
              first: tuple | None = None) -> None:
        """The rest of a batch that stopped at `words[off]` stays fetched: `first` (a packet
        that waits or raised, run again next) and what parse reads after it (at most `limit`
        packets in all) go to `pending`; the read pointer moves past them."""
        pending = self.pending
        if first is not None:
            pending.append(first)
            off += first[4]
            limit -= 1
        rptr = self.rptr
        try:
            pkts, used, skip = self.ex.parse(words[off:], limit, self.where_ring, skip,
                                             rptr + off)
        except QueueError:                       # malformed: the batch ends before it
            pkts, used = [], 0
        pending.extend(pkts)
        self.rptr = rptr + off + used
        self.skip = skip

    def describe(self) -> str:
        return f"{super().describe()}; {self.ex.where}"


__all__ = ["PM4Executor", "PM4Processor", "packet_dwords"]
