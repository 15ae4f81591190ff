"""KFD version checks at open and feature gating by minor version.

Request numbers expected here are computed from the _IOC layout of
include/uapi/asm-generic/ioctl.h and the struct sizes of the UAPI header (88-byte CREATE_QUEUE
args up to 1.16, 96 bytes from 1.17 with sdma_engine_id + pad), not read from our tables.
"""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.kfd import KFD, KFDVersionError

from .fakeport import GET_VERSION, FakeKFDPort, raw


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("K") << 8) | nr


CREATE_QUEUE_88 = _iowr(0x02, 88)
CREATE_QUEUE_96 = _iowr(0x02, 96)
RUNTIME_ENABLE = _iowr(0x25, 16)
AVAILABLE_MEMORY = _iowr(0x23, 16)
SVM = _iowr(0x20, 24)
SET_XNACK_MODE = _iowr(0x21, 4)
SMI_EVENTS = _iowr(0x1F, 8)


def open_kfd(version):
    port = FakeKFDPort(version)
    return port, KFD(port)


def test_open_reads_the_version():
    port, kfd = open_kfd((1, 11))
    assert kfd.version == (1, 11)
    assert port.requests == [GET_VERSION]
    assert kfd.has(11) and not kfd.has(12)


@pytest.mark.parametrize("major", [0, 2])
def test_other_major_versions_are_refused(major):
    port = FakeKFDPort((major, 3))
    with pytest.raises(KFDVersionError) as info:
        KFD(port)
    text = str(info.value)
    assert f"{major}.3" in text and "major version 1" in text
    assert port.closed == [1000]   # the fd does not leak


@pytest.mark.parametrize("minor,allowed", [(11, False), (12, False), (13, True), (17, True)])
def test_runtime_enable_gated(minor, allowed):
    port, kfd = open_kfd((1, minor))
    if allowed:
        kfd.runtime_enable()
        assert port.requests[-1] == RUNTIME_ENABLE
    else:
        with pytest.raises(KFDVersionError) as info:
            kfd.runtime_enable()
        assert f"1.{minor}" in str(info.value) and "1.13" in str(info.value)
        assert info.value.ioctl == "RUNTIME_ENABLE"
        assert port.requests == [GET_VERSION]   # refused without a syscall


@pytest.mark.parametrize("call,request_,first", [
    (lambda k: k.available_memory(gpu_id=1), AVAILABLE_MEMORY, 9),
    (lambda k: k.svm(op=0, start_addr=0x1000, size=0x1000), SVM, 5),
    (lambda k: k.set_xnack_mode(enabled=True), SET_XNACK_MODE, 5),
    (lambda k: k.smi_events(gpu_id=1), SMI_EVENTS, 3),
], ids=["AVAILABLE_MEMORY", "SVM", "SET_XNACK_MODE", "SMI_EVENTS"])
def test_minor_gating(call, request_, first):
    port, kfd = open_kfd((1, first - 1))
    with pytest.raises(KFDVersionError, match=rf"1\.{first - 1}\b"):
        call(kfd)
    assert port.requests == [GET_VERSION]
    port, kfd = open_kfd((1, first))
    call(kfd)
    assert port.requests[-1] == request_


def test_prepared_is_gated_too():
    port, kfd = open_kfd((1, 11))
    with pytest.raises(KFDVersionError):
        kfd.prepared("RUNTIME_ENABLE")
    assert port.requests == [GET_VERSION]


QUEUE = dict(gpu_id=0x1234, queue_type=2, ring_base=0x10000, ring_size=0x1000,
             write_pointer=0x20000, read_pointer=0x20080)


@pytest.mark.parametrize("minor,request_", [(11, CREATE_QUEUE_88), (16, CREATE_QUEUE_88),
                                            (17, CREATE_QUEUE_96)])
def test_create_queue_struct_size_follows_the_version(minor, request_):
    port, kfd = open_kfd((1, minor))
    kfd.create_queue(**QUEUE)
    assert port.requests[-1] == request_


def test_create_queue_1_17_carries_sdma_engine_id():
    port, kfd = open_kfd((1, 17))
    seen = {}

    def handler(arg):
        b = raw(arg, 96)
        # offsets from the 1.17 UAPI struct: ring_size @32, gpu_id @36, queue_type @40,
        # sdma_engine_id @88
        seen["ring_size"], seen["gpu_id"], seen["queue_type"] = struct.unpack_from("<III", b, 32)
        (seen["sdma_engine_id"],) = struct.unpack_from("<I", b, 88)
        struct.pack_into("<I", b, 52, 6)                # queue_id (out)
        struct.pack_into("<Q", b, 24, 0xC000123400000010)  # doorbell_offset (out)
        return 0

    port.handlers[CREATE_QUEUE_96] = handler
    info = kfd.create_queue(**{**QUEUE, "queue_type": 4}, sdma_engine_id=5)
    assert seen == {"ring_size": 0x1000, "gpu_id": 0x1234, "queue_type": 4,
                    "sdma_engine_id": 5}
    assert (info.queue_id, info.doorbell_offset) == (6, 0xC000123400000010)


@pytest.mark.parametrize("kw", [{"sdma_engine_id": 1}, {"queue_type": 4, "sdma_engine_id": 1}])
def test_sdma_engine_id_needs_1_17(kw):
    port, kfd = open_kfd((1, 16))
    with pytest.raises(KFDVersionError, match=r"1\.17"):
        kfd.create_queue(**{**QUEUE, **kw})
    assert port.requests == [GET_VERSION]


def test_sdma_by_engine_id_needs_an_engine():
    _, kfd = open_kfd((1, 17))
    with pytest.raises(UsageError, match="sdma_engine_id"):
        kfd.create_queue(**{**QUEUE, "queue_type": 4})


def test_event_age_needs_1_14():
    port, kfd = open_kfd((1, 13))
    with pytest.raises(KFDVersionError, match=r"1\.14"):
        kfd.wait_events(event_ids=[1], timeout_ms=0, last_event_ages=[3])
    assert port.requests == [GET_VERSION]


def test_from_fd_assumes_the_given_version():
    port = FakeKFDPort((1, 11))
    kfd = KFD.from_fd(port, 5, version=(1, 12))
    assert kfd.version == (1, 12) and port.requests == []
    kfd.close()
    assert port.closed == []   # not owned
    KFD.from_fd(port, 6, owns_fd=True).close()
    assert port.closed == [6]
