"""Round-trip properties: decode(encode(p)) == p for every packet kind and target, with fields
drawn inside their legal ranges; and decoders never fail with anything but PacketDecodeError
on arbitrary input (the simulator feeds them whatever lands in a ring)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_amdgpu.packets import aql, pm4, sdma
from pytest_amdgpu.packets.common import ArrayField, Layout, PacketDecodeError
from pytest_amdgpu.targets import get_target

TARGETS = ("gfx90a", "gfx942", "gfx1100")
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _field_strategy(f) -> st.SearchStrategy[Any]:
    if isinstance(f, ArrayField):
        top = (1 << (32 * f.elem_dw)) - 1
        return st.tuples(*[st.integers(0, top)] * f.count)
    if f.strict:
        return st.sampled_from(sorted(f.names))
    covered = f.covered
    return st.integers(0, covered).map(lambda v, c=covered, b=f.bias: (v & c) + b)


def _layout_kwargs(lay: Layout) -> st.SearchStrategy[dict[str, Any]]:
    fields = {f.name: _field_strategy(f) for f in lay.fields}
    if lay.tail:
        top = lay.tail_min + 8 if lay.tail_max is None else min(lay.tail_min + 8, lay.tail_max)
        fields[lay.tail] = st.lists(st.integers(0, 0xFFFFFFFF), min_size=lay.tail_min,
                                    max_size=top).map(tuple)
    return st.fixed_dictionaries(fields)


def _fix(cls: type, kw: dict[str, Any]) -> dict[str, Any]:
    """Apply the cross-field rules encode() enforces (alignment by mode, register window)."""
    if cls is pm4.WriteData and kw["dst_sel"] in (1, 2, 5):
        kw["addr"] &= ~3
    elif cls is pm4.WaitRegMem:
        kw["addr"] = kw["addr"] & ~3 if kw["mem_space"] == 1 else kw["addr"] & ~0xFFFC0000
    elif cls is pm4.ReleaseMem and kw["dst_sel"] in (0, 1):
        kw["addr"] &= ~7
    elif cls is pm4.CopyData:
        align = ~7 if kw["count_sel"] else ~3
        if kw["src_sel"] in (1, 2):
            kw["src_addr"] &= align
        if kw["dst_sel"] in (2, 5):
            kw["dst_addr"] &= align
    elif cls is pm4.SetShReg:
        kw["reg_offset"] %= 0x400 - len(kw["values"]) + 1
    elif cls in (pm4.AtomicMem, sdma.SdmaFence, sdma.SdmaAtomic):
        kw["addr"] &= ~3
    elif cls is sdma.SdmaWriteLinear:
        kw["dst_addr"] &= ~3
    elif cls is sdma.SdmaPollRegmem and kw["mem_poll"]:
        kw["addr"] &= ~3
    elif cls is sdma.SdmaIndirect:
        kw["addr"] &= ~31
    elif cls is sdma.SdmaConstFill and kw["fillsize"] == 2:
        kw["dst_addr"] &= ~3
        kw["size"] = max(4, kw["size"] & ~3)
    elif cls is aql.KernelDispatchPacket:
        for k in ("workgroup_size_x", "workgroup_size_y", "workgroup_size_z"):
            kw[k] = max(1, kw[k])
    return kw


def _strategy(cls: type, lays: tuple[Layout, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(lays).flatmap(_layout_kwargs).map(lambda kw: cls(**_fix(cls, kw)))


PM4_CASES = [(cls, t) for cls in pm4.PACKET_CLASSES for t in TARGETS]


@pytest.mark.parametrize(("cls", "target"), PM4_CASES,
                         ids=[f"{c.__name__}-{t}" for c, t in PM4_CASES])
def test_pm4_roundtrip(cls, target):
    t = get_target(target)

    @SETTINGS
    @given(p=_strategy(cls, cls.layouts(cls.form_for(t))), pad=st.integers(0, 3))
    def check(p, pad):
        words = p.encode(t)
        stream = [pm4.PM4_NOP_1DW] * pad + words + [pm4.PM4_NOP_1DW]
        got, n = pm4.decode(stream, pad, t)
        assert n == len(words)
        assert got == p
        assert got.encode(t) == words
        assert isinstance(got.render(t), str)

    check()


SDMA_CASES = [(cls, t) for cls in sdma.PACKET_CLASSES for t in TARGETS]


@pytest.mark.parametrize(("cls", "target"), SDMA_CASES,
                         ids=[f"{c.__name__}-{t}" for c, t in SDMA_CASES])
def test_sdma_roundtrip(cls, target):
    t = get_target(target)
    form = (t.sdma_version[0], t.sdma_count_bits)

    @SETTINGS
    @given(p=_strategy(cls, cls.layouts(form)))
    def check(p):
        words = p.encode(t)
        got, n = sdma.decode([*words, 0], 0, t)
        assert (got, n) == (p, len(words))
        assert type(got) is cls
        raw = struct.pack(f"<{len(words)}I", *words)
        assert sdma.decode(raw, 0, t)[0] == p

    check()


@pytest.mark.parametrize("cls", aql.PACKET_CLASSES, ids=lambda c: c.__name__)
def test_aql_roundtrip(cls):
    @SETTINGS
    @given(p=_strategy(cls, (cls.layout(),)), slot=st.integers(0, 2))
    def check(p, slot):
        raw = p.encode()
        assert len(raw) == 64
        ring = bytes(64 * slot) + raw
        got, n = aql.decode(ring, 64 * slot)
        assert (got, n) == (p, 64)
        assert type(got) is cls

    check()


@SETTINGS
@given(words=st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=40),
       target=st.sampled_from(TARGETS))
def test_pm4_garbage_never_crashes(words, target):
    for off in range(len(words)):
        try:
            _, n = pm4.decode(words, off, target)
        except PacketDecodeError as e:
            assert e.offset == off and e.engine == "PM4"
        else:
            assert 1 <= n <= len(words) - off
    text = pm4.format_stream(words, target, mark=0)
    assert text.splitlines()[0].startswith("=>")


@SETTINGS
@given(words=st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=40),
       target=st.sampled_from(TARGETS))
def test_sdma_garbage_never_crashes(words, target):
    for off in range(len(words)):
        try:
            _, n = sdma.decode(words, off, target)
        except PacketDecodeError as e:
            assert e.offset == off and e.engine == "SDMA"
        else:
            assert 1 <= n <= len(words) - off
    assert sdma.format_stream(words, target)


@SETTINGS
@given(raw=st.binary(min_size=64, max_size=64))
def test_aql_garbage_never_crashes(raw):
    try:
        p, n = aql.decode(raw)
    except PacketDecodeError as e:
        assert e.offset == 0 and e.unit == "byte"
    else:
        assert n == 64
        if not isinstance(p, aql.InvalidPacket):
            assert aql.decode(p.encode())[0] == p
    assert aql.format_stream(raw)
