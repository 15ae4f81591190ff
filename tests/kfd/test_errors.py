"""errno → typed KFD errors: class, message contents, pickling (xdist ships them across)."""

from __future__ import annotations

import errno
import os
import pickle

import pytest

from pytest_amdgpu.errors import AmdgpuError
from pytest_amdgpu.kfd import errors as kerr
from pytest_amdgpu.kfd.errors import ENOTSUPP, KFDError, kfd_error

# errno values from the C library's <errno.h> via Python's errno module (not from our table);
# 524 is the kernel-internal ENOTSUPP (include/linux/errno.h) that CREATE_QUEUE returns.
MAPPING = [
    (errno.EINVAL, kerr.KFDInvalidArgument),
    (errno.ENOMEM, kerr.KFDOutOfMemory),
    (errno.EBUSY, kerr.KFDBusy),
    (errno.ENODEV, kerr.KFDNoDevice),
    (errno.ENOTTY, kerr.KFDNotSupported),
    (errno.EOPNOTSUPP, kerr.KFDNotSupported),
    (524, kerr.KFDNotSupported),
    (errno.EPERM, kerr.KFDPermissionDenied),
    (errno.EACCES, kerr.KFDPermissionDenied),
    (errno.EFAULT, kerr.KFDBadAddress),
    (errno.ENOSPC, kerr.KFDNoSpace),
    (errno.ESRCH, kerr.KFDNoProcess),
    (errno.EBADF, kerr.KFDBadFile),
    (errno.ETIME, kerr.KFDTimedOut),
    (errno.ETIMEDOUT, kerr.KFDTimedOut),
    (errno.EIO, kerr.KFDIOError),
    (errno.EADDRINUSE, kerr.KFDAddressInUse),
    (errno.EINTR, kerr.KFDInterrupted),
]


@pytest.mark.parametrize("code,cls", MAPPING, ids=[str(c) for c, _ in MAPPING])
def test_errno_maps_to_class(code, cls):
    exc = kfd_error("CREATE_QUEUE", code, {"gpu_id": 1})
    assert type(exc) is cls
    assert isinstance(exc, KFDError) and isinstance(exc, OSError)
    assert isinstance(exc, AmdgpuError)
    assert exc.errno == code


def test_unknown_errno_is_the_base_class():
    exc = kfd_error("SVM", errno.EXDEV)
    assert type(exc) is KFDError
    assert "EXDEV" in str(exc)


def test_enotsupp_is_named_even_though_libc_lacks_it():
    assert ENOTSUPP == 524
    exc = kfd_error("CREATE_QUEUE", 524, {"queue_type": 9})
    assert exc.errno_name == "ENOTSUPP"
    assert "queue_type" in str(exc) and "ENOTSUPP" in str(exc)


def test_message_names_ioctl_errno_arguments_and_hint():
    exc = kfd_error("MAP_MEMORY_TO_GPU", errno.ENOMEM,
                    {"handle": 0x500000003, "gpu_ids": [0x1234]})
    text = str(exc)
    assert text.startswith("MAP_MEMORY_TO_GPU failed with ENOMEM")
    assert os.strerror(errno.ENOMEM) in text
    assert "handle=0x500000003" in text and "gpu_ids=[4660]" in text
    # facts-kfd.md §2.5: an unknown memory handle is ENOMEM in MAP/UNMAP
    assert "handle is unknown" in text
    assert exc.hint in text


@pytest.mark.parametrize("ioctl,code,words", [
    ("CREATE_QUEUE", errno.ESRCH, "ACQUIRE_VM"),                 # §2.6 row 10
    ("ALLOC_MEMORY_OF_GPU", errno.ENODEV, "ACQUIRE_VM"),          # §2.3 row 6
    ("FREE_MEMORY_OF_GPU", errno.EBUSY, "UNMAP"),                 # §2.4 row 4
    ("UPDATE_QUEUE", errno.EFAULT, "queue_id is unknown"),       # §2.7
    ("SET_CU_MASK", errno.EINVAL, "multiple of 32"),              # §2.7
    ("WAIT_EVENTS", errno.EIO, "destroyed"),                      # §2.9 W5
])
def test_hints_follow_the_driver(ioctl, code, words):
    assert words in str(kfd_error(ioctl, code))


def test_generic_hint_for_enotty():
    assert "does not know this request" in str(kfd_error("SVM", errno.ENOTTY))


def test_explicit_hint_overrides():
    exc = kfd_error("SVM", errno.EINVAL, {}, hint="my hint")
    assert str(exc).endswith(": my hint")


@pytest.mark.parametrize("code,cls", MAPPING[:6], ids=[str(c) for c, _ in MAPPING[:6]])
def test_pickle_round_trip(code, cls):
    exc = kfd_error("ALLOC_MEMORY_OF_GPU", code, {"gpu_id": 7, "size": 1 << 30})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert (back.ioctl, back.errno, back.errno_name, back.hint) == \
        (exc.ioctl, exc.errno, exc.errno_name, exc.hint)
    assert back.call_args == {"gpu_id": 7, "size": 1 << 30}


def test_pickle_keeps_attributes_set_after_construction():
    exc = kfd_error("MAP_MEMORY_TO_GPU", errno.EINVAL, {"handle": 1})
    exc.n_success = 2
    back = pickle.loads(pickle.dumps(exc))
    assert back.n_success == 2


def test_version_error_pickles():
    exc = kerr.KFDVersionError("RUNTIME_ENABLE", errno.ENOTTY, "needs 1.13",
                               {"kfd_version": "1.11"})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is kerr.KFDVersionError and "1.11" in str(back)
