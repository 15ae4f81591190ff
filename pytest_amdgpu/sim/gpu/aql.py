"""The AQL packet processor: the CP firmware's view of an HSA (AQL) user queue.

Packets are 64-byte slots at ring_base + (index mod slots) * 64; the read index (the queue's
read_dispatch_id, amd_queue_t + 128, written to rptr_addr) and the write index (write_dispatch_id,
amd_queue_t + 56) count packets and never wrap. A doorbell wakes the processor, which then runs
the packets below write_dispatch_id in order. A producer reserves a slot by moving
write_dispatch_id and publishes the packet by writing its header last, so a reserved slot whose
header type is still INVALID makes the processor wait (re-checking on memory writes) until the
header is published; it never runs a slot at or past write_dispatch_id, whatever that slot
holds. Each packet runs to completion before the next starts, so the
barrier bit (wait for all earlier packets of this queue) always holds, and acquire/release
fences are no-ops (simulated memory is coherent). On completion the processor sets the slot's
header type back to INVALID, advances read_dispatch_id, decrements the completion signal
(64-bit value at handle + 8) by one and, if the signal has an event mailbox, writes its event id
there and raises a CP interrupt with it.

Kernel dispatch packets: the processor reads the 64-byte kernel descriptor at kernel_object
through the VM (a fault there is a VM fault, like any CP fetch), checks packet and descriptor,
and programs the dispatch the way the CP firmware does: entry = descriptor + entry offset (+256
with preloaded kernargs), RSRC1/2/3 from the descriptor, user SGPRs in the ABI order of the
descriptor's enable bits, LDS from the packet's group segment, scratch from amd_queue_t. Invalid
packets raise the CP's packet exception codes (kfd_ioctl.h EC_QUEUE_PACKET_*) as HW exceptions
and the queue stops. Choices where the sources are silent: a grid smaller than the workgroup is
valid (one partial workgroup, as the hardware's partial-group support allows); the LDS is
max(packet group_segment_size, descriptor static size) (the packet's value includes the static
part in ROCR; the max never gives a kernel less than it declared).

Layouts: part D's `packets.aql` (HSA hsa.h / hsa_ext_amd.h, ROCR amd_hsa_queue.h /
amd_hsa_signal.h; facts-sdma-aql-codeobj.md §2-§3) and the AMDGPUUsage kernel descriptor (§4).
"""

from __future__ import annotations

import struct

from ...codeobj.descriptor import KD_SIZE, KERNEL_CODE_PROPERTIES, KernelDescriptor
from ...packets import aql as A
from ...packets import pm4 as P
from ...packets.common import PacketDecodeError
from .common import MASK64, QueueError, QueueProcessor, Region, Status, region
from .dispatch import (
    EC_CODE_INVALID,
    EC_DIM_INVALID,
    EC_GROUP_SEGMENT_SIZE_INVALID,
    EC_REGISTER_INVALID,
    EC_RESERVED,
    EC_UNSUPPORTED,
    EC_VENDOR_UNSUPPORTED,
    EC_WORK_GROUP_SIZE_INVALID,
    MAX_USER_SGPRS,
    MAX_WORKGROUP_SIZE,
    VALUE_FIELDS,
    DispatchSource,
    DispatchState,
    shader_regs,
)
from .fastdecode import KernelDispatchFields, read_kernel_dispatch
from .pm4 import PM4Executor

PACKET_BYTES = A.PACKET_BYTES
TYPE_INVALID = A.AqlPacketType.INVALID
TYPE_KERNEL_DISPATCH = A.AqlPacketType.KERNEL_DISPATCH

# amd_signal_t / amd_queue_t member offsets (part D's layouts; ROCR amd_hsa_signal.h,
# amd_hsa_queue.h, checked with offsetof in facts §3)
SIGNAL_VALUE = A.AMD_SIGNAL.value
SIGNAL_EVENT_MAILBOX_PTR = A.AMD_SIGNAL.event_mailbox_ptr
SIGNAL_EVENT_ID = A.AMD_SIGNAL.event_id
QUEUE_READ_DISPATCH_ID = A.AMD_QUEUE.read_dispatch_id
QUEUE_COMPUTE_TMPRING_SIZE = A.AMD_QUEUE.compute_tmpring_size
QUEUE_SCRATCH_RESOURCE_DESCRIPTOR = A.AMD_QUEUE.scratch_resource_descriptor
QUEUE_SCRATCH_BACKING_MEMORY_LOCATION = A.AMD_QUEUE.scratch_backing_memory_location
QUEUE_SCRATCH_WAVE64_LANE_BYTE_SIZE = A.AMD_QUEUE.scratch_wave64_lane_byte_size

# hsa_signal_condition_t for BARRIER_VALUE
_CONDITIONS = {0: ("==", lambda a, b: a == b), 1: ("!=", lambda a, b: a != b),
               2: ("<", lambda a, b: a < b), 3: (">=", lambda a, b: a >= b)}

# kernel_code_properties bits a descriptor may set (codeobj's table of the AMDGPUUsage fields);
# the others (9:7, 15:12) are reserved.
_DEFINED_PROPERTIES = 0
for _f in KERNEL_CODE_PROPERTIES:
    _DEFINED_PROPERTIES |= _f.mask
KERNARG_PRELOAD_ENTRY_SKIP = 256        # CP skips the compatibility prologue (AMDGPUUsage)


_INVALID_HEADER = struct.pack("<H", TYPE_INVALID)
# Status members as globals: an Enum attribute lookup costs ~0.2 µs on Python 3.11
_IDLE, _WAIT, _PROGRESS = Status.IDLE, Status.WAIT, Status.PROGRESS


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


class AQLProcessor(QueueProcessor):
    """An AQL queue (KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)."""

    kind = "aql"

    def __init__(self, engine, queue) -> None:
        super().__init__(engine, queue)
        self.read_index = 0
        self._ring: Region | None = None
        self._rptr: Region | None = None
        self._wptr: Region | None = None
        self.pm4: PM4Executor | None = None     # vendor PM4-IB in progress
        self.pm4_index = -1
        self._at: tuple[int, int, int] | None = None   # current packet: index, slot, address
        self._plans: dict[int, _KernelPlan] = {}   # kernel object -> checked descriptor
        self._repeats: dict[tuple, _Repeat] = {}   # dispatch packet dwords 0-9 -> outcome
        self._fields: Region | None = None          # amd_queue_t tmpring / scratch fields
        self._tmpring = (None, 0, 0)                # (COMPUTE_TMPRING_SIZE, its decoding)

    @property
    def loc(self) -> str:
        """Where the current packet is, for messages (formatted only when one is made)."""
        return "" if self._at is None else _packet_where(self._at)

    @property
    def queue_address(self) -> int:
        """The amd_queue_t address (rptr_addr points at its read_dispatch_id)."""
        return self.queue.rptr_addr - QUEUE_READ_DISPATCH_ID

    def sq_interrupt(self, ctx_id: int) -> None:
        """s_sendmsg MSG_INTERRUPT from a wave of this queue (24 bits, facts-kfd.md §4 I3)."""
        self.queue.process.signal_interrupt(self.device, "sq_msg", ctx_id & 0xFFFFFF)

    def describe(self) -> str:
        return (f"AQL queue {getattr(self.queue, 'queue_id', '?')} (read_dispatch_id "
                f"{self.read_index}; {self.loc or 'no packet yet'})")

    # -- main loop -----------------------------------------------------------------------------
    def run(self, budget: int) -> Status:
        q = self.queue
        vm = self.vm
        slots = q.ring_size // PACKET_BYTES
        if slots == 0:
            return _IDLE
        ring = self._ring
        if ring is None or ring.addr != q.ring_base or ring.size != q.ring_size or ring.vm is not vm:
            ring = self._ring = Region(vm, q.ring_base, q.ring_size, True)
        write_index = self._write_index()
        for _ in range(budget):
            index = self.read_index
            if index >= write_index:
                return _IDLE
            off = (index % slots) * PACKET_BYTES
            addr = q.ring_base + off
            words = _PACKET_WORDS.unpack_from(ring.mv, off)
            ptype = words[0] & 0xFF
            if ptype == TYPE_INVALID:
                # Reserved by the write index but not published yet: the CP waits for the
                # header (a producer writes it last).
                self.wait_reason = (f"AQL packet {index} (slot {index % slots}): "
                                    f"write_dispatch_id is {write_index} but the header type "
                                    "is still INVALID")
                return _WAIT
            self._at = (index, index % slots, addr)
            if ptype == TYPE_KERNEL_DISPATCH:
                done = self._kernel_dispatch(addr, words, index)
                signal = words[14] | words[15] << 32
            else:
                pkt = self._decode(_PACKET_WORDS.pack(*words))
                signal = pkt.completion_signal
                t = type(pkt)
                if t is A.BarrierAndPacket or t is A.BarrierOrPacket:
                    done = self._barrier(pkt, t is A.BarrierAndPacket)
                elif t is A.Pm4IbPacket:
                    done = self._pm4_ib(pkt, index)
                elif t is A.BarrierValuePacket:
                    done = self._barrier_value(pkt)
                else:
                    raise QueueError(f"{EC_UNSUPPORTED}: {self.loc}: {pkt.MNEMONIC} packets are "
                                     "not processed by a GPU kernel agent's queue")
            if not done:
                return _WAIT
            self._complete(addr, signal, index)
            self.completed += 1
        return _PROGRESS

    def _write_index(self) -> int:
        """write_dispatch_id, read from the amd_queue_t (the doorbell only wakes the CP)."""
        w = self._wptr
        if w is None or w.addr != self.queue.wptr_addr or w.vm is not self.vm:
            w = self._wptr = Region(self.vm, self.queue.wptr_addr, 8, False)
        return _U64.unpack_from(w.mv)[0]

    def _decode(self, raw: bytes):
        """D's decoder, with its errors mapped to the CP's packet exception codes."""
        try:
            pkt, _n = A.decode(raw, 0)
            return pkt
        except PacketDecodeError as e:
            if e.field == "format":
                code = EC_VENDOR_UNSUPPORTED
            elif e.field == "dimensions":
                code = EC_DIM_INVALID
            else:
                code = EC_RESERVED
            raise QueueError(f"{code}: {self.loc}: {e.reason}") from None

    def _complete(self, addr: int, signal: int, index: int) -> None:
        """Retire packet `index`: slot header INVALID, read index, completion signal.

        The three stores make one memory-write notification (the signal's atomic makes it, or
        an explicit one without a signal): waiting queues re-check after all of them."""
        ring = self._ring
        off = addr - ring.addr
        ring.mv[off:off + 2] = _INVALID_HEADER                 # header type INVALID
        self.read_index = index + 1
        rp = self._rptr
        if rp is None or rp.addr != self.queue.rptr_addr or rp.vm is not self.vm:
            rp = self._rptr = region(rp, self.vm, self.queue.rptr_addr, 8, True)
        _U64.pack_into(rp.mv, 0, index + 1)
        if signal:
            self.signal_completion(signal)
        else:
            self.vm.notify_write()

    def signal_completion(self, signal: int) -> None:
        """Decrement the signal's 64-bit value; mailbox + interrupt when it has one."""
        vm = self.vm
        vm.atomic(signal + SIGNAL_VALUE, "sub", 1, 0, 8)
        mailbox = vm.read_u64(signal + SIGNAL_EVENT_MAILBOX_PTR)
        if mailbox:
            event_id = vm.read_u32(signal + SIGNAL_EVENT_ID)
            # ROCR's SDMA path writes the 32-bit event id to the mailbox and raises a trap with
            # it; the CP does the same for AQL completion (facts §2.6, inferred).
            vm.write_u32(mailbox, event_id)
            self.queue.process.signal_interrupt(self.device, "cp_eop", event_id)

    # -- barriers --------------------------------------------------------------------------------
    def _barrier(self, pkt, is_and: bool) -> bool:
        deps = pkt.dep_signal
        values = []
        for handle in deps:
            if handle == 0:
                values.append(None)      # AND: satisfied; OR: never satisfies
                continue
            values.append(_signed64(self.vm.read_u64(handle + SIGNAL_VALUE)))
        if is_and:
            ok = all(v is None or v == 0 for v in values)
        else:
            ok = any(v is not None and v == 0 for v in values)
        if not ok:
            kind = "BARRIER_AND" if is_and else "BARRIER_OR"
            shown = ", ".join(f"{h:#x}={v}" for h, v in zip(deps, values, strict=True) if h)
            self.wait_reason = f"{kind} {self.loc}: dependencies {shown or '(all null)'}"
        return ok

    # -- vendor-specific ----------------------------------------------------------------------
    def _pm4_ib(self, pkt: A.Pm4IbPacket, index: int) -> bool:
        """AMD PM4-IB (format 1): run the embedded INDIRECT_BUFFER through the PM4 engine."""
        if self.pm4 is None or self.pm4_index != index:
            ex = PM4Executor(self)
            try:
                cls, fields, _n = ex.reader.read(list(pkt.ib_jump), 0)
            except PacketDecodeError as e:
                raise QueueError(f"{EC_VENDOR_UNSUPPORTED}: {self.loc}: the PM4-IB jump command "
                                 f"does not decode: {e.reason}") from None
            if cls is not P.IndirectBuffer:
                raise QueueError(f"{EC_VENDOR_UNSUPPORTED}: {self.loc}: the PM4-IB jump command "
                                 f"is {cls.MNEMONIC}, not INDIRECT_BUFFER")
            loc = self.loc
            ex.loc = (lambda off: f"{loc}: PM4 INDIRECT_BUFFER", 0)
            ex.execute((cls, fields), 0)
            self.pm4, self.pm4_index = ex, index
        try:
            status, _ = self.pm4.run_frames(1 << 30)
        except QueueError as e:
            if e.reason.startswith("EC_"):
                raise
            # A bad PM4 packet in the IB: the vendor-specific packet is invalid (ROCR reads
            # error bit 256 as HSA_STATUS_ERROR_INVALID_PACKET_FORMAT).
            raise QueueError(f"{EC_VENDOR_UNSUPPORTED}: {self.loc}: {e.reason}") from None
        if status is Status.WAIT:
            self.wait_reason = self.pm4.wait_reason
            return False
        self.pm4, self.pm4_index = None, -1
        return True

    def _barrier_value(self, pkt: A.BarrierValuePacket) -> bool:
        """AMD BARRIER_VALUE (format 2): wait until (signal value & mask) cond value."""
        if pkt.signal == 0:
            return True
        cur = self.vm.read_u64(pkt.signal + SIGNAL_VALUE)
        name, fn = _CONDITIONS[pkt.cond]
        masked = _signed64(cur & pkt.mask)
        if fn(masked, _signed64(pkt.value)):
            return True
        self.wait_reason = (f"BARRIER_VALUE {self.loc}: (signal {pkt.signal:#x} value "
                            f"{_signed64(cur)} & {pkt.mask:#x}) {name} {_signed64(pkt.value)} "
                            "is false")
        return False

    # -- kernel dispatch ----------------------------------------------------------------------
    def _kernel_dispatch(self, addr: int, words: tuple[int, ...], index: int) -> bool:
        """Check and run the kernel dispatch packet `words` (its 16 dwords).

        A packet whose first 10 dwords (header .. kernel_object: shape, segment sizes, code)
        equal those of an earlier one, with the same descriptor bytes and amd_queue_t scratch
        fields, passed every check already: only what changes per packet is worked out again
        (`_Repeat`). The descriptor is still fetched, the scratch fields still read."""
        key = words[:10]
        rep = self._repeats.get(key)
        if rep is not None:
            values = rep.values(self, addr, words, index)
            if values is not None:
                self.engine.run_shader(self, shader_regs(values, rep.extra, self.queue),
                                       interrupt=self.sq_interrupt)
                return True
        try:
            pkt = read_kernel_dispatch(words)
        except LookupError:
            pkt = self._decode(_PACKET_WORDS.pack(*words))   # D's error for the reserved value
        values, extra = self._dispatch_values(addr, pkt, index, key)
        self.engine.run_shader(self, shader_regs(values, extra, self.queue),
                               interrupt=self.sq_interrupt)
        return True

    def dispatch_state(self, addr: int, pkt: A.KernelDispatchPacket,
                       index: int) -> DispatchState | None:
        """Check a kernel dispatch packet and its descriptor; the dispatch the CP programs."""
        values, extra = self._dispatch_values(addr, pkt, index)
        return DispatchState(*values, extra=extra)

    def _dispatch_values(self, addr: int, pkt: A.KernelDispatchPacket | KernelDispatchFields,
                         index: int, key: tuple | None = None) -> tuple[tuple, dict]:
        """dispatch_state's work: DispatchState's fields in order (dispatch.VALUE_FIELDS) and
        its `extra`, so the AQL path can build the shader registers without the state."""
        wgx, wgy, wgz = wg = (pkt.workgroup_size_x, pkt.workgroup_size_y, pkt.workgroup_size_z)
        gx, gy, gz = grid = (pkt.grid_size_x, pkt.grid_size_y, pkt.grid_size_z)
        private_size, group_size = pkt.private_segment_size, pkt.group_segment_size
        kobj, kernarg = pkt.kernel_object, pkt.kernarg_address
        dims = pkt.dimensions
        # fast test of the usual shapes; the loop below names the first bad dimension
        if not (0 < dims <= 3 and wgx and gx
                and (wgy and gy if dims >= 2 else wgy == 1 and gy == 1)
                and (wgz and gz if dims >= 3 else wgz == 1 and gz == 1)):
            self._check_dims(dims, wg, grid)
        size = wgx * wgy * wgz
        if size > MAX_WORKGROUP_SIZE:
            raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {self.loc}: workgroup {wgx}x{wgy}x{wgz} "
                             f"= {size} work-items exceeds {MAX_WORKGROUP_SIZE}")
        if kobj == 0:
            raise QueueError(f"{EC_CODE_INVALID}: {self.loc}: kernel_object is null")
        if kobj % 64:
            raise QueueError(f"{EC_CODE_INVALID}: {self.loc}: kernel_object {kobj:#x} is not "
                             "64-byte aligned")
        vm = self.vm
        # the CP fetches the descriptor: may fault
        raw = vm.read(kobj, KD_SIZE)
        plan = self._plans.get(kobj)
        if plan is None or plan.raw != raw:
            plan = self._plan(kobj, raw)
        target = self.target
        # LDS: the packet's group segment (which includes the static LDS); never less than the
        # descriptor's static size.
        group_fixed = plan.group_fixed
        lds = group_size if group_size > group_fixed else group_fixed
        lds_limit = target.lds_bytes_per_workgroup
        if lds > lds_limit:
            raise QueueError(f"{EC_GROUP_SEGMENT_SIZE_INVALID}: {self.loc}: group_segment_size "
                             f"{group_size} (descriptor static {group_fixed}) exceeds the "
                             f"{lds_limit} bytes of LDS a workgroup can have on {target.name}")
        # User SGPRs in ABI order (AMDGPUUsage "Initial Kernel Execution State", as codeobj
        # lists them for the descriptor's enable bits).
        qaddr = self.queue.rptr_addr - QUEUE_READ_DISPATCH_ID
        fields = self._fields
        if fields is None or fields.addr != qaddr + _FIELDS_LO or fields.vm is not vm:
            fields = self._queue_fields(qaddr)
        if fields is not None:
            scratch_base = _U64.unpack_from(fields.mv, _SCRATCH_BASE)[0]
        else:
            scratch_base = vm.read_u64(qaddr + QUEUE_SCRATCH_BACKING_MEMORY_LOCATION)
        user = self._user_sgprs(plan, addr, qaddr, kernarg, index, private_size, scratch_base)
        nuser = plan.user_len
        if nuser > MAX_USER_SGPRS:
            raise QueueError(f"{EC_REGISTER_INVALID}: {self.loc}: kernel descriptor at {kobj:#x}: "
                             f"the enabled user SGPRs need {nuser} registers; at most "
                             f"{MAX_USER_SGPRS} exist")
        if plan.user_count < nuser:
            raise QueueError(f"{EC_REGISTER_INVALID}: {self.loc}: kernel descriptor at {kobj:#x}: "
                             f"compute_pgm_rsrc2.USER_SGPR_COUNT {plan.user_count} is less than "
                             f"the {nuser} user SGPRs the kernel_code_properties enable")
        if fields is not None:
            tmpring = _U32.unpack_from(fields.mv, _TMPRING)[0]
        else:
            tmpring = vm.read_u32(qaddr + QUEUE_COMPUTE_TMPRING_SIZE)
        memo = self._tmpring
        if memo[0] != tmpring:
            memo = self._tmpring = (tmpring, *A.decode_tmpring_size(target, tmpring))
        waves, wave_bytes = memo[1], memo[2]
        lds_gran = target.lds_alloc_granule
        rsrc2 = plan.rsrc2_base | (((lds + lds_gran - 1) // lds_gran) << 15)
        private_fixed = plan.private_fixed
        # in VALUE_FIELDS order: pgm_addr, rsrc1-3, user_data, grid, workgroup, start, wave32,
        # scratch_base, tmpring_size, scratch_wave_bytes, scratch_waves, private_segment_size,
        # lds_bytes, dispatch_id, dispatch_ptr, queue_ptr, kernarg_ptr, initiator, source,
        # kernel_code_properties
        values = (((kobj + plan.entry_offset) & MASK64) + plan.entry_skip, plan.rsrc1, rsrc2,
                  plan.rsrc3, user, grid, wg, _START, plan.wave32, scratch_base, tmpring,
                  wave_bytes, waves,
                  private_size if private_size > private_fixed else private_fixed, lds, index,
                  addr, qaddr, kernarg, 0, DispatchSource(_dispatch_source, self._at), plan.props)
        if fields is not None:
            lane_bytes = _U32.unpack_from(fields.mv, _LANE_BYTES)[0]
        else:
            lane_bytes = vm.read_u32(qaddr + QUEUE_SCRATCH_WAVE64_LANE_BYTE_SIZE)
        extra = {"scratch_wave64_lane_bytes": lane_bytes}
        if key is not None and fields is not None:
            repeats = self._repeats
            if len(repeats) >= _PLAN_CACHE:
                repeats.clear()
            repeats[key] = _Repeat(plan, fields, kobj, values, extra)
        return values, extra

    def _queue_fields(self, qaddr: int) -> Region | None:
        """A view of amd_queue_t's tmpring / scratch fields when they lie in the read pointer's
        mapping, which CREATE_QUEUE pinned (its queue_refcount makes UNMAP fail while the queue
        lives): reading them through it gives what VM reads give, without a lookup each time.
        None when they lie elsewhere (or in user pages): then every dispatch reads the VM."""
        vm = self.vm
        lo, hi = qaddr + _FIELDS_LO, qaddr + _FIELDS_HI
        m = vm.lookup(self.queue.rptr_addr)
        if m is None or m.host or not m.queue_refcount or not (m.start <= lo and hi <= m.end):
            self._fields = None
            return None
        self._fields = Region(vm, lo, hi - lo, False)
        return self._fields

    def _check_dims(self, dims: int, wg: tuple[int, int, int],
                    grid: tuple[int, int, int]) -> None:
        """Raise the CP's error for the first bad workgroup / grid dimension of a packet."""
        loc = self.loc
        for axis, name in enumerate("xyz"):
            if axis >= dims:
                if wg[axis] != 1 or grid[axis] != 1:
                    raise QueueError(
                        f"{EC_DIM_INVALID}: {loc}: {dims}-dimensional dispatch with "
                        f"workgroup_size_{name}={wg[axis]} grid_size_{name}={grid[axis]} "
                        "(unused dimensions must be 1)")
                continue
            if wg[axis] == 0:
                raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {loc}: workgroup_size_{name} "
                                 "is 0")
            if grid[axis] == 0:
                raise QueueError(f"{EC_DIM_INVALID}: {loc}: grid_size_{name} is 0")

    def _plan(self, kobj: int, raw: bytes) -> _KernelPlan:
        """Decode and check the descriptor bytes `raw` read at `kobj`, and cache the result.

        The plan holds everything the CP derives from the 64 bytes alone, so a repeated
        dispatch of the same kernel object only compares the bytes it read again. A
        descriptor the CP refuses is not cached: its error is raised on every dispatch.
        """
        kd = KernelDescriptor.from_bytes(raw, self.target.name)
        props, preload = kd.kernel_code_properties, kd.kernarg_preload
        target = self.target
        kdloc = f"{self.loc}: kernel descriptor at {kobj:#x}"
        if kd.reserved0 or any(kd.reserved1) or kd.reserved3:
            raise QueueError(f"{EC_CODE_INVALID}: {kdloc} has reserved bytes set "
                             "(bytes 12-15, 24-43 or 60-63 must be 0)")
        if props & ~_DEFINED_PROPERTIES:
            raise QueueError(f"{EC_CODE_INVALID}: {kdloc}: kernel_code_properties 0x{props:04x} "
                             f"has reserved bits 0x{props & ~_DEFINED_PROPERTIES:04x} set")
        wave32 = kd.wavefront_size == 32
        if wave32 and 32 not in target.wave_sizes:
            raise QueueError(f"{EC_CODE_INVALID}: {kdloc}: ENABLE_WAVEFRONT_SIZE32 is set but "
                             f"{target.name} runs wave64 only")
        if preload and not target.kernarg_preload:
            raise QueueError(f"{EC_CODE_INVALID}: {kdloc}: kernarg_preload 0x{preload:x} is "
                             f"reserved on {target.name}")
        if target.architected_flat_scratch and (kd.has("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER")
                                                or kd.has("ENABLE_SGPR_FLAT_SCRATCH_INIT")):
            raise QueueError(f"{EC_CODE_INVALID}: {kdloc}: kernel_code_properties 0x{props:04x} "
                             "enables the private segment buffer / flat scratch init SGPRs, "
                             f"which {target.name} (architected flat scratch) does not have")
        sgprs = kd.user_sgprs()
        preload_len = kd.kernarg_preload_length
        plan = _KernelPlan(
            raw=raw, group_fixed=kd.group_segment_fixed_size,
            private_fixed=kd.private_segment_fixed_size, rsrc1=kd.compute_pgm_rsrc1,
            rsrc2_base=kd.compute_pgm_rsrc2 & ~(0x1FF << 15), rsrc3=kd.compute_pgm_rsrc3,
            props=props, wave32=wave32, entry_offset=kd.kernel_code_entry_byte_offset,
            entry_skip=KERNARG_PRELOAD_ENTRY_SKIP if preload_len else 0,
            user_names=tuple(u.name for u in sgprs), user_len=sum(u.count for u in sgprs),
            user_count=kd.user_sgpr_count, preload_len=preload_len,
            preload_offset=kd.kernarg_preload_offset)
        plans = self._plans
        if len(plans) >= _PLAN_CACHE and kobj not in plans:
            plans.pop(next(iter(plans)))
        plans[kobj] = plan
        return plan

    def _user_sgprs(self, plan: _KernelPlan, addr: int, qaddr: int, kernarg: int, index: int,
                    private_size: int, scratch_base: int) -> list[int]:
        """COMPUTE_USER_DATA_0..15: the enabled user SGPR values in ABI order (reads scratch
        V# / preloaded kernargs), then zeros (more than 16 values when the descriptor enables
        more; the caller refuses that)."""
        vm = self.vm
        user: list[int] = []
        for name in plan.user_names:
            if name == "private_segment_buffer":
                user += struct.unpack("<4I", vm.read(qaddr + QUEUE_SCRATCH_RESOURCE_DESCRIPTOR, 16))
            elif name == "kernarg_preload":
                n = plan.preload_len
                user += struct.unpack(f"<{n}I", vm.read(kernarg + 4 * plan.preload_offset, 4 * n))
            elif name == "private_segment_size":
                user.append(private_size)
            else:
                value = {"dispatch_ptr": addr, "queue_ptr": qaddr, "kernarg_segment_ptr": kernarg,
                         "dispatch_id": index, "flat_scratch_init": scratch_base}[name]
                user += [value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF]
        if len(user) < MAX_USER_SGPRS:
            user += _ZERO_USER[len(user):]
        return user


_ZERO_USER = [0] * MAX_USER_SGPRS
# the amd_queue_t bytes a dispatch reads: compute_tmpring_size .. scratch_wave64_lane_byte_size
_FIELDS_LO = QUEUE_COMPUTE_TMPRING_SIZE
_FIELDS_HI = QUEUE_SCRATCH_WAVE64_LANE_BYTE_SIZE + 4
_TMPRING = 0
_SCRATCH_BASE = QUEUE_SCRATCH_BACKING_MEMORY_LOCATION - _FIELDS_LO
_LANE_BYTES = QUEUE_SCRATCH_WAVE64_LANE_BYTE_SIZE - _FIELDS_LO
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_PACKET_WORDS = struct.Struct("<16I")      # one 64-byte AQL packet as dwords
_START = (0, 0, 0)          # AQL dispatches start at workgroup (0, 0, 0)
# _dispatch_values builds its tuple in this order
assert len(VALUE_FIELDS) == 22 and VALUE_FIELDS[-2:] == ("source", "kernel_code_properties")
_PLAN_CACHE = 64            # kernel objects whose checked descriptor a queue remembers


def _packet_where(at: tuple[int, int, int]) -> str:
    index, slot, addr = at
    return f"AQL packet {index} (slot {slot} at {addr:#x})"


def _dispatch_source(at: tuple[int, int, int]) -> str:
    return f"{_packet_where(at)} (kernel dispatch)"


class _Repeat:
    """A kernel dispatch packet's checked outcome, for packets with the same first 10 dwords
    (AQLProcessor._kernel_dispatch): valid while the descriptor bytes (fetched again each
    time, as the CP does) and the amd_queue_t scratch fields read now equal those it was made
    with. The user SGPRs, dispatch id, packet and kernarg addresses are per packet."""

    __slots__ = ("extra", "fields", "head", "kobj", "mid", "plan", "props", "qaddr", "qbytes")

    def __init__(self, plan: _KernelPlan, fields: Region, kobj: int, values: tuple,
                 extra: dict) -> None:
        self.plan = plan
        self.fields = fields
        self.qbytes = fields.mv.tobytes()
        self.kobj = kobj
        self.head = values[:4]                  # pgm_addr, rsrc1, rsrc2, rsrc3
        self.mid = values[5:15]                 # grid .. lds_bytes
        self.qaddr = values[17]
        self.props = values[21]
        self.extra = extra

    def values(self, proc: AQLProcessor, addr: int, words: tuple[int, ...], index: int
               ) -> tuple | None:
        """The dispatch's values (as _dispatch_values gives them), None when the descriptor or
        the scratch fields changed (then the packet is checked in full)."""
        plan = self.plan
        fields = self.fields
        qaddr = self.qaddr
        if proc._fields is not fields or fields.mv.tobytes() != self.qbytes or \
                proc.queue.rptr_addr - QUEUE_READ_DISPATCH_ID != qaddr:
            return None
        if proc.vm.read(self.kobj, KD_SIZE) != plan.raw:     # the CP's fetch: may fault
            return None
        kernarg = words[10] | words[11] << 32
        # the packet's private_segment_size (dword 6), the amd_queue_t scratch base
        user = proc._user_sgprs(plan, addr, qaddr, kernarg, index, words[6], self.mid[4])
        return (*self.head, user, *self.mid, index, addr, qaddr, kernarg, 0,
                DispatchSource(_dispatch_source, proc._at), self.props)


class _KernelPlan:
    """What the CP derives from one kernel descriptor's 64 bytes (`raw`), already checked."""

    __slots__ = ("entry_offset", "entry_skip", "group_fixed", "preload_len", "preload_offset",
                 "private_fixed", "props", "raw", "rsrc1", "rsrc2_base", "rsrc3", "user_count",
                 "user_len", "user_names", "wave32")

    def __init__(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

