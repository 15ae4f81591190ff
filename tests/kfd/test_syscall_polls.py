"""The C polls of kfd._syscall that run without the GIL: wait_value (Signal.wait's first poll)
and device_poll (a simulated GPU thread waiting for a doorbell), and the GIL hand-off between
them. Memory is a numpy word another Python thread writes, so each poll must release the GIL
to see the write at all."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_amdgpu.kfd import _syscall

SECOND = 10**9
COND = {"always": 0, "<": 1, "<=": 2, "==": 3, "!=": 4, ">=": 5, ">": 6}


def _later(fn, delay: float = 0.02) -> threading.Thread:
    t = threading.Timer(delay, fn)
    t.start()
    return t


@pytest.mark.parametrize("width", [4, 8])
def test_wait_value_sees_a_write_from_another_thread(width):
    word = np.zeros(1, dtype=np.uint64 if width == 8 else np.uint32)
    t = _later(lambda: word.__setitem__(0, 7))
    got = _syscall.wait_value(word.ctypes.data, width, (1 << 64) - 1, 7, COND["=="], 5 * SECOND)
    t.join()
    assert got == 7


@pytest.mark.parametrize(("cond", "ref", "met"), [
    ("<", 0, True), ("<=", -1, True), ("==", -1, True), ("!=", -1, False),
    (">=", 0, False), (">", -2, True), ("<", -1, False), ("always", 123, True),
])
def test_wait_value_compares_signed_64_bit(cond, ref, met):
    """The word holds -1 (as hsa_signal_value_t); a condition it already meets returns -1 at
    once, one it does not returns the value another thread writes later that meets it."""
    mask = (1 << 64) - 1
    word = np.array([mask], dtype=np.uint64)
    later = {"!=": 0, ">=": 0, "<": -5}.get(cond, 0) & mask
    t = _later(lambda: word.__setitem__(0, later))
    got = _syscall.wait_value(word.ctypes.data, 8, mask, ref & mask, COND[cond], 5 * SECOND)
    t.join()
    assert got == (mask if met else later)


def test_wait_value_masks_before_comparing():
    word = np.array([0xABCD_0001], dtype=np.uint64)
    assert _syscall.wait_value(word.ctypes.data, 8, 0xFFFF, 1, COND["=="], SECOND) == 0xABCD_0001


def test_wait_value_rejects_bad_width_and_condition():
    word = np.zeros(1, dtype=np.uint64)
    with pytest.raises(ValueError, match="width"):
        _syscall.wait_value(word.ctypes.data, 2, 1, 0, 3, 0)
    with pytest.raises(ValueError, match="cond"):
        _syscall.wait_value(word.ctypes.data, 8, 1, 0, 7, 0)


def test_device_poll_returns_the_new_value_or_the_old_one_on_timeout():
    word = np.array([5], dtype=np.uint64)
    assert _syscall.device_poll(word.ctypes.data, 5, 0) == 5      # timeout: unchanged
    _syscall.device_running(1)                                   # as an engine thread does
    try:
        t = _later(lambda: word.__setitem__(0, 6))
        assert _syscall.device_poll(word.ctypes.data, 5, 5 * SECOND) == 6
        t.join()
    finally:
        _syscall.device_running(-1)


def test_hand_off_never_holds_a_waiter_for_good():
    """A device thread that keeps running Python (counted by device_running) only delays a
    successful host wait by the bounded hand-off; a device_poll that saw its doorbell while no
    host waits goes on after the bounded hand-off too. Both return the value."""
    word = np.array([1], dtype=np.uint64)
    _syscall.device_running(1)
    try:
        for _ in range(3):
            assert _syscall.wait_value(word.ctypes.data, 8, (1 << 64) - 1, 1, COND["=="],
                                       SECOND) == 1
        kick = np.array([0], dtype=np.uint64)
        t = _later(lambda: kick.__setitem__(0, 1), 0.0)
        assert _syscall.device_poll(kick.ctypes.data, 0, 5 * SECOND) == 1
        t.join()
    finally:
        _syscall.device_running(-1)
