"""Structural checks of the layout tables: no two fields of a packet claim the same bit, and the
per-target forms differ exactly where the fact sheets say they do."""

from __future__ import annotations

import pytest

from pytest_amdgpu.packets import aql, pm4, sdma
from pytest_amdgpu.packets.common import Layout
from pytest_amdgpu.targets import TARGETS


def _all_layouts() -> list[Layout]:
    lays: list[Layout] = []
    for t in TARGETS.values():
        for cls in pm4.PACKET_CLASSES:
            lays += cls.layouts(cls.form_for(t))
        for cls in sdma.PACKET_CLASSES:
            lays += cls.layouts((t.sdma_version[0], t.sdma_count_bits))
    lays += [cls.layout() for cls in aql.PACKET_CLASSES]
    return lays


@pytest.mark.parametrize("lay", _all_layouts(), ids=lambda lay: f"{lay.name}/{lay.ndw}dw")
def test_fields_do_not_overlap(lay):
    claimed: dict[int, int] = {}
    for dw, bits in lay.const.items():
        claimed[dw] = bits
    if lay.length:
        dw, lo, width, _ = lay.length
        assert not claimed.get(dw, 0) & (((1 << width) - 1) << lo)
        claimed[dw] = claimed.get(dw, 0) | (((1 << width) - 1) << lo)
    for f in lay.fields:
        for p in f.parts:
            overlap = claimed.get(p.dw, 0) & p.mask
            assert not overlap, f"{lay.name}.{f.name} {p!r} overlaps bits {overlap:#x}"
            claimed[p.dw] = claimed.get(p.dw, 0) | p.mask


def test_per_target_forms_follow_the_table():
    # facts-pm4.md §3.3/§3.4: RELEASE_MEM 7 body dwords on both families; ACQUIRE_MEM 6 (gfx9)
    # and 7 (gfx10+) body dwords.
    for name, t in TARGETS.items():
        (rel,) = pm4.ReleaseMem.layouts(pm4.ReleaseMem.form_for(t))
        (acq,) = pm4.AcquireMem.layouts(pm4.AcquireMem.form_for(t))
        assert rel.ndw - 1 == 7
        assert acq.ndw - 1 == (6 if t.acquire_mem_form == "gfx9" else 7), name
        (copy,) = sdma.SdmaCopyLinear.layouts((t.sdma_version[0], t.sdma_count_bits))
        width = copy.by_name["size"].parts[0].width
        # facts-sdma §1.4: COPY_LINEAR count 22 bits on SDMA 4.x, 30 bits on SDMA 6.0
        assert width == {4: 22, 6: 30}[t.sdma_version[0]], name
