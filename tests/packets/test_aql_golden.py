"""AQL golden packets and layouts: values from facts-sdma-aql-codeobj.md §2, §3 and §6.4-6.5
(hsa.h / hsa_ext_amd.h / amd_hsa_queue.h / amd_hsa_signal.h, offsets cross-checked there with
gcc offsetof), not from our builder."""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.errors import PacketError
from pytest_amdgpu.packets import aql, pm4

# hsa.h: HSA_PACKET_HEADER_TYPE 0, _BARRIER 8, _SCACQUIRE_FENCE_SCOPE 9, _SCRELEASE_FENCE_SCOPE 11
HSA_PACKET_TYPE_KERNEL_DISPATCH, HSA_PACKET_TYPE_BARRIER_AND, HSA_PACKET_TYPE_BARRIER_OR = 2, 3, 5
HSA_FENCE_SCOPE_SYSTEM = 2


def words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


def hsa_header(ptype: int, barrier: int, acquire: int, release: int) -> int:
    return ptype | (barrier << 8) | (acquire << 9) | (release << 11)


def test_header_arithmetic_matches_fact_sheet():
    # §2.1: dispatch + barrier + system/system = 0x1502; barrier-AND 0x1503; barrier-OR 0x1505
    assert hsa_header(2, 1, 2, 2) == 0x1502
    assert hsa_header(3, 1, 2, 2) == 0x1503
    assert hsa_header(5, 1, 2, 2) == 0x1505


def test_kernel_dispatch_golden():
    expected_dwords = words(
        "00011502 00010100 00000001 00000400 00000001 00000001 00000000 00000000 "
        "00001000 00007F00 00002000 00007F00 00000000 00000000 00003000 00007F00")
    expected_bytes = bytes.fromhex(   # the byte dump of §6.4
        "02 15 01 00 00 01 01 00 01 00 00 00 00 04 00 00"
        "01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00"
        "00 10 00 00 00 7f 00 00 00 20 00 00 00 7f 00 00"
        "00 00 00 00 00 00 00 00 00 30 00 00 00 7f 00 00")
    p = aql.KernelDispatchPacket(
        barrier=1, acquire_fence_scope=2, release_fence_scope=2, dimensions=1,
        workgroup_size_x=256, workgroup_size_y=1, workgroup_size_z=1,
        grid_size_x=1024, grid_size_y=1, grid_size_z=1,
        kernel_object=0x7F0000001000, kernarg_address=0x7F0000002000,
        completion_signal=0x7F0000003000)
    assert p.encode_words() == expected_dwords
    assert p.encode() == expected_bytes
    assert struct.unpack("<16I", expected_bytes) == tuple(expected_dwords)
    got, n = aql.decode(expected_bytes)
    assert n == 64 and got == p
    # Publishing (§6.4): the release store carries header | setup << 16 = 0x00011502
    first, body = aql.publish_parts(expected_bytes)
    assert first == 0x00011502 and body == expected_bytes[4:]


def test_barrier_and_golden():
    expected = words(
        "00001503 00000000 00004000 00007F00 00004040 00007F00 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00005000 00007F00")
    p = aql.BarrierAndPacket(barrier=1, dep_signal=(0x7F0000004000, 0x7F0000004040),
                             completion_signal=0x7F0000005000)
    assert p.encode_words() == expected
    got, _ = aql.decode(struct.pack("<16I", *expected))
    assert got == p and got.dep_signal[2:] == (0, 0, 0)
    # §6.5: the same packet with type 5 is a barrier-OR (header 0x1505)
    expected[0] = 0x1505
    got, _ = aql.decode(struct.pack("<16I", *expected))
    assert type(got) is aql.BarrierOrPacket and got.dep_signal[:2] == p.dep_signal[:2]


def test_agent_dispatch_and_invalid():
    # §2.4: type u16 at 2, return_address at 8, arg[4] at 16, completion_signal at 56
    raw = bytearray(64)
    struct.pack_into("<HHIQ4QQQ", raw, 0, hsa_header(4, 0, 2, 2), 0x8001, 0, 0x1111, 1, 2, 3, 4,
                     0, 0x2222)
    got, _ = aql.decode(bytes(raw))
    assert got == aql.AgentDispatchPacket(type=0x8001, return_address=0x1111, arg=(1, 2, 3, 4),
                                          completion_signal=0x2222)
    assert got.encode() == bytes(raw)
    inv, _ = aql.decode(struct.pack("<H62x", 1))
    assert type(inv) is aql.InvalidPacket


def test_vendor_pm4_ib():
    # §2.5: header type 0, AmdFormat 1 at byte 2, PM4 INDIRECT_BUFFER in bytes 4..19,
    # dw_cnt_remain 0xA at 20, completion_signal at 56 (ROCR amd_aql_pm4_ib)
    ib_jump = [0xC0023F00, 0x00005000, 0x00000001, 0x00800040]   # facts-pm4.md G7
    raw = struct.pack("<HBB4II32xQ", hsa_header(0, 0, 2, 2), 1, 0, *ib_jump, 0xA, 0x9000)
    got, _ = aql.decode(raw)
    assert type(got) is aql.Pm4IbPacket
    assert got.indirect_buffer == pm4.IndirectBuffer(addr=0x1_00005000, ib_size=0x40)
    assert got.dw_cnt_remain == 0xA and got.completion_signal == 0x9000
    assert aql.Pm4IbPacket.for_ib(0x1_00005000, 0x40, completion_signal=0x9000).encode() == raw


def test_vendor_barrier_value():
    # §2.5 BARRIER_VALUE: signal 8, value 16, mask 24, cond 32 (hsa_signal_condition_t)
    raw = struct.pack("<HBBIQqqI4x8x8xQ", hsa_header(0, 1, 2, 2), 2, 0, 0, 0x5000, -1,
                      0xFF, 3, 0x6000)
    got, _ = aql.decode(raw)
    assert type(got) is aql.BarrierValuePacket
    assert got.value == (1 << 64) - 1 and got.mask == 0xFF
    assert got.cond == aql.SignalCondition.GTE and got.barrier == 1
    assert got == aql.BarrierValuePacket(barrier=1, signal=0x5000, value=-1, mask=0xFF, cond=3,
                                         completion_signal=0x6000)
    assert got.encode() == raw


def test_amd_queue_and_signal_offsets():
    # §3.1 / §3.2 (ROCR amd_hsa_queue.h / amd_hsa_signal.h, checked there with gcc offsetof)
    q = aql.AMD_QUEUE
    assert q.sizeof == 256
    assert q.write_dispatch_id == 56
    assert q.read_dispatch_id == 128
    assert q.read_dispatch_id_field_base_byte_offset == 136
    assert q.compute_tmpring_size == 140
    assert q.max_legacy_doorbell_dispatch_id_plus_1 == 80
    assert q.scratch_resource_descriptor == 144
    assert q.scratch_backing_memory_location == 160
    assert q.queue_properties == 180
    assert q.queue_inactive_signal == 192
    assert (q.type, q.features, q.base_address, q.doorbell_signal, q.size, q.id) == \
        (0, 4, 8, 16, 24, 32)
    assert aql.HSA_QUEUE.sizeof == 40 and aql.HSA_QUEUE.id == 32
    s = aql.AMD_SIGNAL
    assert s.sizeof == 64
    assert (s.kind, s.value, s.event_mailbox_ptr, s.event_id, s.start_ts, s.end_ts,
            s.queue_ptr) == (0, 8, 16, 24, 32, 40, 48)


def test_struct_pack_unpack():
    buf = aql.AMD_SIGNAL.pack(kind=aql.SignalKind.USER, value=-3, event_mailbox_ptr=0x10,
                              event_id=7)
    assert len(buf) == 64
    assert struct.unpack_from("<q", buf, 8)[0] == -3
    assert aql.AMD_SIGNAL.unpack(buf)["event_id"] == 7
    q = aql.AMD_QUEUE.pack(write_dispatch_id=6, read_dispatch_id=5,
                           read_dispatch_id_field_base_byte_offset=128)
    assert struct.unpack_from("<Q", q, 56)[0] == 6 and struct.unpack_from("<Q", q, 128)[0] == 5


@pytest.mark.parametrize(("target", "waves", "wave_bytes", "expected"), [
    # ROCR registers.h COMPUTE_TMPRING_SIZE: gfx9 WAVESIZE [24:12] in 1 KiB units,
    # gfx11 WAVESIZE [26:12] in 256-byte units; WAVES [11:0]
    ("gfx942", 32, 4096, 32 | (4 << 12)),
    ("gfx90a", 1, 1000, 1 | (1 << 12)),
    ("gfx1100", 16, 4096, 16 | (16 << 12)),
])
def test_tmpring_size(target, waves, wave_bytes, expected):
    assert aql.encode_tmpring_size(target, waves, wave_bytes) == expected
    w, b = aql.decode_tmpring_size(target, expected)
    assert w == waves and b >= wave_bytes


def test_tmpring_size_overflow():
    with pytest.raises(PacketError, match="WAVESIZE"):
        aql.encode_tmpring_size("gfx942", 1, (1 << 13) * 1024)


def test_dispatch_template_patches_the_fields_encode_writes():
    """DispatchTemplate: the packet encoded once, with segment sizes, kernarg address and
    completion signal written per use, gives the bytes the full encoder gives; a value that
    does not fit its field raises the encoder's error."""
    import dataclasses
    import random

    base = aql.KernelDispatchPacket(
        barrier=1, dimensions=3, workgroup_size_x=32, workgroup_size_y=4, workgroup_size_z=2,
        grid_size_x=100, grid_size_y=9, grid_size_z=4, private_segment_size=16,
        group_segment_size=512, kernel_object=0x7F00_0000_1000, kernarg_address=0x1000,
        completion_signal=0x2000)
    tpl = aql.DispatchTemplate(base)
    rng = random.Random(5)
    for _ in range(20):
        fields = {"private_segment_size": rng.getrandbits(32),
                  "group_segment_size": rng.getrandbits(32),
                  "kernarg_address": rng.getrandbits(64),
                  "completion_signal": rng.getrandbits(64)}
        want = dataclasses.replace(base, **fields).encode()
        assert bytes(tpl.encode(*fields.values())) == want
        header, body = tpl.parts(*fields.values())
        assert (header, bytes(body)) == aql.publish_parts(want)
    with pytest.raises(PacketError):
        tpl.parts(1 << 32, 0, 0, 0)
    with pytest.raises(PacketError):
        tpl.encode(0, -1, 0, 0)
