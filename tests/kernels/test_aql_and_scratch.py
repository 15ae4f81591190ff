"""The AQL dispatch packet a Kernel builds (facts-sdma-aql-codeobj.md §6.4 golden bytes) and
the scratch set-up values: the private segment buffer V# in ROCR's register layouts, and
COMPUTE_TMPRING_SIZE in each family's units."""

from __future__ import annotations

import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.runtime.kernel import Kernel, scratch_config, scratch_rsrc
from pytest_amdgpu.targets import get_target


def golden() -> bytes:
    # facts-sdma-aql-codeobj.md §6.4, the 64 bytes as printed there
    rows = ["02 15 01 00 00 01 01 00 01 00 00 00 00 04 00 00",
            "01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00",
            "00 10 00 00 00 7f 00 00 00 20 00 00 00 7f 00 00",
            "00 00 00 00 00 00 00 00 00 30 00 00 00 7f 00 00"]
    return bytes.fromhex("".join(rows).replace(" ", ""))


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_aql_packet_golden(target):
    info = kernels.load("copy", target).kernels["copy"]
    kernel = Kernel.unbound(info, get_target(target), 0x7F00_0000_1000 - info.kd_offset)
    assert kernel.kd_address == 0x7F00_0000_1000
    packet = kernel.aql_packet(1024, 256, 0x7F00_0000_2000, 0x7F00_0000_3000)
    assert packet.encode() == golden()


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_aql_packet_dims_and_segments(target):
    info = kernels.load("lds_barrier", target).kernels["lds_barrier"]
    kernel = Kernel.unbound(info, get_target(target), 0x7F00_0000_0000)
    raw = kernel.aql_packet((10, 7, 5), (4, 4, 2), 0x2000, 0, barrier=False,
                            private_segment_size=48).encode()
    u16 = lambda o: int.from_bytes(raw[o:o + 2], "little")   # noqa: E731
    u32 = lambda o: int.from_bytes(raw[o:o + 4], "little")   # noqa: E731
    assert u16(0) == 2 | 2 << 9 | 2 << 11          # KERNEL_DISPATCH, no barrier, system scopes
    assert u16(2) == 3                              # setup: 3 dimensions
    assert [u16(4), u16(6), u16(8)] == [4, 4, 2]
    assert [u32(12), u32(16), u32(20)] == [10, 7, 5]
    assert (u32(24), u32(28)) == (48, 4096)        # private per work-item, static LDS


def _field(word: int, lo: int, width: int) -> int:
    return (word >> lo) & ((1 << width) - 1)


def test_scratch_rsrc_gfx9_layout():
    """registers.h SQ_BUF_RSRC_WORD1/3 (gfx9) with ROCR's FillBufRsrcWord1/3 values."""
    w = scratch_rsrc(get_target("gfx90a"), 0x7E12_3456_7000, 0x40000)
    assert w[0] == 0x3456_7000
    assert (_field(w[1], 0, 16), _field(w[1], 16, 14), _field(w[1], 30, 1),
            _field(w[1], 31, 1)) == (0x7E12, 0, 0, 1)          # base hi, stride, swizzle
    assert w[2] == 0x40000                                    # NUM_RECORDS
    fields = [(0, 3, 4), (3, 3, 5), (6, 3, 6), (9, 3, 7),     # DST_SEL_X..W = X, Y, Z, W
              (12, 3, 4), (15, 4, 4),                         # NUM_FORMAT UINT, DATA_FORMAT 32
              (19, 2, 1), (21, 2, 3), (23, 1, 1),             # ELEMENT_SIZE 4, STRIDE 64, TID
              (24, 1, 0), (25, 1, 0), (26, 1, 0), (27, 3, 0), (30, 2, 0)]  # ATC..TYPE
    for lo, width, value in fields:
        assert _field(w[3], lo, width) == value, lo


def test_scratch_rsrc_gfx11_layout():
    """registers.h SQ_BUF_RSRC_WORD1_GFX11 / WORD3_GFX11 with ROCR's values."""
    w = scratch_rsrc(get_target("gfx1100"), 0x7E12_3456_7000, 0x40000)
    assert (_field(w[1], 0, 16), _field(w[1], 16, 14), _field(w[1], 30, 2)) == (0x7E12, 0, 1)
    fields = [(0, 3, 4), (3, 3, 5), (6, 3, 6), (9, 3, 7), (12, 6, 20),   # FORMAT 32_UINT
              (18, 3, 0), (21, 2, 0), (23, 1, 1), (24, 4, 0), (28, 2, 2), (30, 2, 0)]
    for lo, width, value in fields:
        assert _field(w[3], lo, width) == value, lo


@pytest.mark.parametrize(("target", "lane_bytes", "lanes", "waves", "ses", "wave_bytes",
                          "waves_field"), [
    # gfx9: WAVESIZE [24:12] in 1 KiB units, WAVES for the device
    ("gfx90a", 260, 64, 10, 4, 17 * 1024, 12),
    ("gfx942", 16, 64, 3, 1, 1024, 3),
    # gfx11: WAVESIZE [26:12] in 256-byte units, WAVES per shader engine
    ("gfx1100", 260, 32, 10, 6, 34 * 256, 2),        # 272 B x 32 lanes
])
def test_tmpring_size(target, lane_bytes, lanes, waves, ses, wave_bytes, waves_field):
    t = get_target(target)
    cfg = scratch_config(t, lane_bytes=lane_bytes, wave_lanes=lanes, waves=waves,
                         shader_engines=ses, base=0x1000)
    assert cfg.lane_bytes % 16 == 0 and cfg.lane_bytes >= lane_bytes
    assert cfg.wave_bytes == wave_bytes
    unit, bits = (1024, 13) if t.family == "gfx9" else (256, 15)
    assert _field(cfg.tmpring_size, 0, 12) == waves_field
    assert _field(cfg.tmpring_size, 12, bits) * unit == wave_bytes
    total = waves_field * ses if target == "gfx1100" else waves_field
    assert cfg.size == total * wave_bytes >= waves * lanes * lane_bytes
    assert cfg.wave64_lane_bytes == cfg.lane_bytes * lanes // 64
