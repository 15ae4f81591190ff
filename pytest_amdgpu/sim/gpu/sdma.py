"""The SDMA engine: one user-mode SDMA (RLC) queue.

Pointers are bytes, 64-bit and monotonic; the doorbell carries the byte write pointer and the
engine writes its byte read pointer past the packets it fetched to rptr_addr once per turn
(facts-sdma §1.5; the ring mechanics are common.RingProcessor's, shared with PM4).
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
    PREFETCH_DW,
    Location,
    QueueError,
    RingProcessor,
    Status,
    atomic_packet,
    compare,
    read_words,
)
from .fastdecode import SDMAReader, reader_for

log = logging.getLogger("pytest_amdgpu.sim.gpu")

COPY_CHUNK = 1 << 20          # bytes moved per step of a large copy or fill
RETRY_FOREVER = 0xFFF


class SDMAProcessor(RingProcessor):
    """An SDMA user queue (KFD_IOC_QUEUE_TYPE_SDMA / SDMA_XGMI / SDMA_BY_ENG_ID); pointers in
    bytes (RingProcessor)."""

    kind = "sdma"
    ENGINE = "SDMA"
    UNIT = 1
    UNIT_NAME = "byte"

    def __init__(self, engine, queue) -> None:
        super().__init__(engine, queue)
        self.retries = 0              # failed checks of the current POLL_REGMEM
        self.reader: SDMAReader = reader_for(SDMAReader, self.target)
        self.loc: Location | None = None

    def describe(self) -> str:
        return f"{super().describe()}; {self.where}"

    # -- fetch -----------------------------------------------------------------------------------
    def packet_dwords(self, words: list[int], off: int) -> int:
        return S.packet_dwords(words, off)

    def parse(self, words: list[int], limit: int, rptr: int) -> tuple[list, int]:
        return self._parse(words, limit, self.where_ring, rptr, 4)

    def _parse(self, words: list[int], limit: int, where, base: int, scale: int
               ) -> tuple[list, int]:
        """Up to `limit` complete packets: ([(packet, location, offset, dwords)], dwords used);
        a location is (where, base + offset * scale)."""
        out = []
        off = 0
        n = len(words)
        read = self.reader.read
        packet_dwords = S.packet_dwords
        while off < n and len(out) < limit:
            need = packet_dwords(words, off)
            if off + need > n:
                break
            try:
                pkt = read(words, off, need)
            except PacketDecodeError as e:
                if out:
                    break
                raise QueueError(f"{where(base + off * scale)}: malformed SDMA packet (header "
                                 f"0x{words[off]:08x}): {e.reason}") from None
            out.append((pkt, (where, base + off * scale), off, need))
            off += need
        return out, off

    # -- indirect buffers ------------------------------------------------------------------------
    @staticmethod
    def _where_ib(addr: int) -> str:
        return f"SDMA packet in IB at {addr:#x}"

    def run_ib(self, budget: int) -> tuple[Status, int]:
        """Run the IB in `ib_frames` ([next byte address, end address]; SDMA IBs do not
        nest)."""
        ib = self.ib_frames[0]
        done = 0
        addr, end = ib
        while addr < end:
            if done >= budget:
                ib[0] = addr
                return Status.PROGRESS, done
            base = addr
            words = read_words(self.vm, base, min((end - base) >> 2, PREFETCH_DW))
            pkts, _used = self._parse(words, budget - done, self._where_ib, base, 4)
            if not pkts:
                need = S.packet_dwords(words, 0)
                raise QueueError(f"{self._where_ib(base)}: packet (header 0x{words[0]:08x}) of "
                                 f"{need} dwords runs past the end of its IB at {end:#x}")
            for pkt, here, off, n in pkts:
                if not self.execute(pkt, here, in_ib=True):
                    ib[0] = base + 4 * off
                    return Status.WAIT, done
                addr = base + 4 * (off + n)
                done += 1
        self.ib_frames.clear()
        return Status.IDLE, done

    # -- packets ---------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        if not self.loc:
            return "SDMA packet"
        fn, off = self.loc
        return fn(off)

    def execute(self, packet: tuple, loc: Location, *, in_ib: bool = False) -> bool:
        """Execute one read SDMA packet ((class, fields) from the reader); False = it must
        wait (re-run later)."""
        self.loc = loc
        t, p = packet
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
            return atomic_packet(self, p.addr, p.atomic_op, p.src_data, p.cmp_data, bool(p.loop),
                                 f"{self.where}: SDMA ATOMIC") is not None
        if t is S.SdmaIndirect:
            if in_ib:
                raise QueueError(f"{self.where}: INDIRECT inside an IB (SDMA IBs do not nest)")
            if p.ib_size:
                base = p.addr & ~31       # the IB base is 32-byte aligned (kernel masks it)
                self.ib_frames.append([base, base + 4 * p.ib_size])
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
