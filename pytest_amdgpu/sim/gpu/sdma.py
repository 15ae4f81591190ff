"""The SDMA engine: one user-mode SDMA (RLC) queue.

Pointers are bytes, 64-bit and monotonic; the doorbell carries the byte write pointer and the
engine writes its byte read pointer to rptr_addr as it fetches packets (facts-sdma §1.5).
Packets are decoded by part D's `pytest_amdgpu.packets.sdma.decode` for the target's SDMA
version (4.4 on gfx90a/gfx942, 6.0 on gfx1100). An IB (INDIRECT) runs from memory; SDMA has no
nested IBs.

Semantics worth noting (facts-sdma-aql-codeobj.md §1.4):
- COPY_LINEAR / CONST_FILL counts are N-1 in the packet (D's decoder gives N); in dword-fill
  mode the low two bits of the byte count are ignored (the kernel writes bytes-1, ROCR
  (dwords-1)*4; both fill whole dwords).
- POLL_REGMEM compares `(value & mask) func reference` with the PM4 compare functions; a retry
  count of 0xFFF polls forever, a smaller count gives up after that many failed re-checks and
  the engine continues with the next packet. A register poll with HDP_FLUSH set is an HDP flush
  and completes at once (the simulator has no HDP cache); other register polls are not modelled.
- TIMESTAMP SET loads this engine's counter (an offset on the GPU clock); GET reads it,
  GET_GLOBAL reads the GPU clock itself.
- TRAP raises an SDMA trap interrupt with int_context [27:0] (facts-kfd.md §4 I3).
"""

from __future__ import annotations

import array
import logging

from ...packets import sdma as S
from ...packets.common import PacketDecodeError
from .common import (
    COMPARE_NAMES,
    MASK64,
    QueueError,
    QueueProcessor,
    Region,
    Status,
    compare,
    region,
)
from .fastdecode import SDMAReader
from .pm4 import TC_OPS, loop_may_succeed, tc_atomic

log = logging.getLogger("pytest_amdgpu.sim.gpu")

PREFETCH_DW = 1024
COPY_CHUNK = 1 << 20          # bytes moved per step of a large copy or fill
RETRY_FOREVER = 0xFFF

# Fixed packet lengths in dwords by op (vega10 / sdma_v6_0_0 pkt_open.h; facts-sdma §1.4).
_FIXED_DW = {4: 6, 5: 4, 6: 2, 8: 6, 10: 8, 11: 5, 13: 3}


def packet_dwords(words: list[int], off: int) -> int:
    """Dwords of the SDMA packet at `off` (at least what is needed to know its length)."""
    h = words[off]
    op = h & 0xFF
    if op == 0:
        return ((h >> 16) & 0x3FFF) + 1
    if op == 1:
        return 9 if (h >> 27) & 1 else 7
    if op == 2:
        if off + 3 >= len(words):
            return 4
        return 5 + (words[off + 3] & 0xFFFFF)
    return _FIXED_DW.get(op, 1)


def _words(data: bytes) -> list[int]:
    return array.array("I", data).tolist()


_READERS: dict[int, SDMAReader] = {}


def _reader(target) -> SDMAReader:
    r = _READERS.get(id(target))
    if r is None or r.target is not target:
        r = _READERS[id(target)] = SDMAReader(target)
    return r


class SDMAProcessor(QueueProcessor):
    """An SDMA user queue (KFD_IOC_QUEUE_TYPE_SDMA / SDMA_XGMI / SDMA_BY_ENG_ID)."""

    kind = "sdma"

    def __init__(self, engine, queue) -> None:
        super().__init__(engine, queue)
        self.rptr = 0                 # bytes after the last fetched packet
        self.pending: list = []       # fetched, not yet executed: (packet, location)
        self.ib: list | None = None   # [next byte address, end address] of the running IB
        self.ib_pending: list = []
        self.retries = 0              # failed checks of the current POLL_REGMEM
        self._ring: Region | None = None
        self._rptr: Region | None = None
        self.reader = _reader(self.target)
        self.loc = ""

    def describe(self) -> str:
        return (f"SDMA queue {getattr(self.queue, 'queue_id', '?')} (rptr {self.rptr:#x} bytes; "
                f"{self.loc or 'no packet yet'})")

    # -- fetch -----------------------------------------------------------------------------------
    def _wptr(self) -> int:
        q = self.queue
        value = getattr(q, "doorbell_value", None)
        if value is None:
            value = self.vm.read_u64(q.wptr_addr)
        return value & MASK64

    def _ring_words(self, start: int, nbytes: int) -> list[int]:
        q = self.queue
        ring = self._ring = region(self._ring, self.vm, q.ring_base, q.ring_size, False)
        return ring.words(start % q.ring_size, nbytes >> 2)

    def _parse(self, words: list[int], limit: int, where) -> tuple[list, int]:
        out = []
        off = 0
        n = len(words)
        read = self.reader.read
        while off < n and len(out) < limit:
            need = packet_dwords(words, off)
            if off + need > n:
                break
            try:
                pkt = read(words, off, need)
            except PacketDecodeError as e:
                if out:
                    break
                raise QueueError(f"{where(off)}: malformed SDMA packet (header "
                                 f"0x{words[off]:08x}): {e.reason}") from None
            out.append((pkt, (where, off), off, need))
            off += need
        return out, off

    def _fetch(self, limit: int) -> bool:
        wptr = self._wptr()
        avail = wptr - self.rptr
        if avail <= 0:
            return False
        q = self.queue
        if avail > q.ring_size:
            raise QueueError(f"SDMA queue {q.queue_id}: write pointer {wptr:#x} is {avail} bytes "
                             f"ahead of the read pointer {self.rptr:#x}, more than the "
                             f"{q.ring_size}-byte ring holds")
        if self.rptr % 4 or avail % 4:
            raise QueueError(f"SDMA queue {q.queue_id}: write pointer {wptr:#x} is not dword "
                             "aligned (SDMA packets are whole dwords)")
        rptr = self.rptr
        size = q.ring_size

        def where(off: int) -> str:
            return f"SDMA packet at ring byte {(rptr + 4 * off) % size:#x} (rptr {rptr + 4 * off:#x})"

        words = self._ring_words(rptr, min(avail, 4 * PREFETCH_DW))
        pkts, used = self._parse(words, limit, where)
        if not pkts:
            need = packet_dwords(words, 0)
            if 4 * need > avail:
                return False             # the rest of the packet is not published yet
            words = self._ring_words(rptr, 4 * need)
            pkts, used = self._parse(words, 1, where)
        self.rptr = rptr + 4 * used
        rp = self._rptr = region(self._rptr, self.vm, q.rptr_addr, 8, True)
        rp.store(0, (self.rptr & MASK64).to_bytes(8, "little"))
        self.pending.extend((p, here) for p, here, _o, _n in pkts)
        return True

    # -- main loop -------------------------------------------------------------------------------
    def run(self, budget: int) -> Status:
        done = 0
        while done < budget:
            if self.ib is not None:
                status, k = self._run_ib(budget - done)
                done += k
                self.completed += k
                if status is not Status.IDLE:
                    return status
                continue
            if self.pending:
                pkt, here = self.pending[0]
                self.loc = here
                if not self.execute(pkt, in_ib=False):
                    return Status.WAIT
                self.pending.pop(0)
                done += 1
                self.completed += 1
                continue
            if not self._fetch(budget - done):
                return Status.IDLE
        return Status.PROGRESS

    def _run_ib(self, budget: int) -> tuple[Status, int]:
        done = 0
        addr, end = self.ib
        while addr < end:
            if done >= budget:
                self.ib[0] = addr
                return Status.PROGRESS, done
            base = addr

            def where(off: int, base=base) -> str:
                return f"SDMA packet in IB at {base + 4 * off:#x}"

            words = _words(self.vm.read(base, min(end - base, 4 * PREFETCH_DW)))
            pkts, _used = self._parse(words, budget - done, where)
            if not pkts:
                need = packet_dwords(words, 0)
                raise QueueError(f"{where(0)}: packet (header 0x{words[0]:08x}) of {need} dwords "
                                 f"runs past the end of its IB at {end:#x}")
            for pkt, here, off, n in pkts:
                self.loc = here
                if not self.execute(pkt, in_ib=True):
                    self.ib[0] = base + 4 * off
                    return Status.WAIT, done
                addr = base + 4 * (off + n)
                done += 1
        self.ib = None
        return Status.IDLE, done

    # -- packets ---------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        if not self.loc:
            return "SDMA packet"
        fn, off = self.loc
        return fn(off)

    def execute(self, pkt: tuple, *, in_ib: bool) -> bool:
        """Execute one read SDMA packet ((class, fields) from the reader); False = it must
        wait (re-run later)."""
        t, p = pkt
        vm = self.vm
        if t is S.SdmaNop:
            return True
        if t is S.SdmaCopyLinear:
            self._copy(p.src_addr, (p.dst_addr,), p.size)
            return True
        if t is S.SdmaCopyLinearBroadcast:
            self._copy(p.src_addr, (p.dst1_addr, p.dst2_addr), p.size)
            return True
        if t is S.SdmaWriteLinear:
            vm.write(p.dst_addr & ~3, array.array("I", p.tail).tobytes())
            return True
        if t is S.SdmaConstFill:
            self._fill(p)
            return True
        if t is S.SdmaFence:
            vm.write_u32(p.addr & ~3, p.data)
            return True
        if t is S.SdmaTrap:
            self.queue.process.signal_interrupt(self.device, "sdma_trap",
                                                p.int_context & 0x0FFFFFFF)
            return True
        if t is S.SdmaPollRegmem:
            return self._poll(p)
        if t is S.SdmaTimestampSet:
            self.engine.sdma_timestamp_offset[self._engine_id] = p.value - self.engine.clock()
            return True
        if t is S.SdmaTimestampGet:
            offset = self.engine.sdma_timestamp_offset.get(self._engine_id, 0)
            vm.write_u64(p.addr & ~7, (self.engine.clock() + offset) & MASK64)
            return True
        if t is S.SdmaTimestampGetGlobal:
            vm.write_u64(p.addr & ~7, self.engine.clock())
            return True
        if t is S.SdmaAtomic:
            if p.loop and not loop_may_succeed(vm, p.addr, p.atomic_op, p.cmp_data):
                self.wait_reason = (f"SDMA ATOMIC compare-swap loop at 0x{p.addr:x}: value != "
                                    f"compare 0x{p.cmp_data:x}")
                return False
            old, size = tc_atomic(vm, p.addr, p.atomic_op, p.src_data, p.cmp_data,
                                  f"{self.where}: SDMA ATOMIC")
            if p.loop and TC_OPS[p.atomic_op][0] == "cmpswap":
                cmp = p.cmp_data & ((1 << (8 * size)) - 1)
                if old != cmp:
                    self.wait_reason = (f"SDMA ATOMIC compare-swap loop at 0x{p.addr:x}: value "
                                        f"0x{old:x} != compare 0x{cmp:x}")
                    return False
            return True
        if t is S.SdmaIndirect:
            if in_ib:
                raise QueueError(f"{self.where}: INDIRECT inside an IB (SDMA IBs do not nest)")
            if p.ib_size:
                base = p.addr & ~31       # the IB base is 32-byte aligned (kernel masks it)
                self.ib = [base, base + 4 * p.ib_size]
            return True
        raise QueueError(f"{self.where}: {t.MNEMONIC} is not executed by the simulated SDMA "
                         "engine")

    @property
    def _engine_id(self) -> int:
        return getattr(self.queue, "sdma_engine", 0) or 0

    def _copy(self, src: int, dsts: tuple[int, ...], size: int) -> None:
        vm = self.vm
        pos = 0
        while pos < size:
            n = min(COPY_CHUNK, size - pos)
            data = vm.read(src + pos, n)
            for d in dsts:
                vm.write(d + pos, data)
            pos += n

    def _fill(self, p) -> None:
        size = p.size
        if p.fillsize == 2:
            size = (size + 3) & ~3
            pattern = (p.data & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            pattern = bytes([p.data & 0xFF])
        chunk = pattern * (min(COPY_CHUNK, size) // len(pattern) + 1)
        pos = 0
        while pos < size:
            n = min(COPY_CHUNK, size - pos)
            self.vm.write(p.dst_addr + pos, chunk[:n])
            pos += n

    def _poll(self, p) -> bool:
        if not p.mem_poll:
            if p.hdp_flush:
                return True               # HDP flush request: no HDP cache to flush
            raise QueueError(f"{self.where}: POLL_REGMEM on a register (mem_poll 0) is not "
                             "modelled by the simulator; poll memory instead")
        addr = p.addr & ~3
        value = self.vm.read_u32(addr)
        if compare(p.function, value, p.mask, p.reference):
            self.retries = 0
            return True
        self.retries += 1
        if p.retry_count != RETRY_FOREVER and self.retries > p.retry_count:
            log.info("%s: POLL_REGMEM gave up after %d retries", self.describe(), p.retry_count)
            self.retries = 0
            return True
        self.wait_reason = (f"POLL_REGMEM memory 0x{addr:x}: (0x{value:x} & 0x{p.mask:x}) "
                            f"{COMPARE_NAMES[p.function]} 0x{p.reference:x} is false")
        return False
