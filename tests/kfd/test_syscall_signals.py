"""A signal handler's exception ends an ioctl that keeps being interrupted.

The syscall layer retries EINTR as libhsakmt does, so a blocking KFD request (WAIT_EVENTS
without a timeout, a hung DESTROY_QUEUE) would never return to Python, and neither Ctrl-C nor
pytest-timeout's SIGALRM could stop it, unless the retry loop runs the Python signal handlers.

Without a GPU no ioctl blocks, so a child process installs a seccomp filter (the kernel's own
mechanism, not our code) that answers one request number with EINTR, forever; a SIGALRM
handler then raises. The child must come back with the handler's exception, on both the path
that keeps the GIL (GET_VERSION) and the one that releases it (WAIT_EVENTS).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() != "x86_64",
    reason="the seccomp filter below is written for Linux x86-64")

# The request numbers from the _IOC layout (include/uapi/asm-generic/ioctl.h), not our table:
# GET_VERSION _IOR('K', 0x01, 8 bytes), WAIT_EVENTS _IOWR('K', 0x0C, 24 bytes).
GET_VERSION = (2 << 30) | (8 << 16) | (ord("K") << 8) | 0x01
WAIT_EVENTS = (3 << 30) | (24 << 16) | (ord("K") << 8) | 0x0C

CHILD = textwrap.dedent("""
    import ctypes, os, signal, struct, sys

    request = int(sys.argv[1])
    mode = sys.argv[2]
    libc = ctypes.CDLL(None, use_errno=True)
    # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} (linux/filter.h); seccomp_data: nr @0,
    # arch @4, args[1] (the request) @24 (linux/seccomp.h); x86-64: AUDIT_ARCH 0xC000003E,
    # __NR_ioctl 16; SECCOMP_RET_ERRNO 0x00050000 | errno, SECCOMP_RET_ALLOW 0x7FFF0000.
    LD, JEQ, RET = 0x20, 0x15, 0x06
    prog = [(LD, 0, 0, 4), (JEQ, 0, 5, 0xC000003E), (LD, 0, 0, 0), (JEQ, 0, 3, 16),
            (LD, 0, 0, 24), (JEQ, 0, 1, request), (RET, 0, 0, 0x00050000 | 4),
            (RET, 0, 0, 0x7FFF0000)]
    filt = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *i) for i in prog))
    fprog = struct.pack("<HxxxxxxQ", len(prog), ctypes.addressof(filt))
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(
            PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) != 0:
        print("NO-SECCOMP", ctypes.get_errno())
        sys.exit(0)

    from pytest_amdgpu.kfd import KFD, LinuxPort, _syscall

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop("alarm")

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    fd = os.open("/dev/null", os.O_RDWR)
    buf = ctypes.create_string_buffer(64)
    try:
        if mode == "raw":
            _syscall.ioctl(fd, request, ctypes.addressof(buf))
        elif mode == "checked":
            _syscall.ioctl_checked(fd, request, ctypes.addressof(buf), print)
        else:
            kfd = KFD.from_fd(LinuxPort(), fd)
            if request & 0xFF == 0x01:   # GET_VERSION
                kfd.get_version()
            else:
                kfd.wait_events(event_ids=[1], timeout_ms=None)
    except Stop:
        print("STOPPED")
    else:
        print("RETURNED")
""")


@pytest.mark.parametrize("mode", ["raw", "checked", "wrapper"])
@pytest.mark.parametrize("request_", [GET_VERSION, WAIT_EVENTS], ids=["gil-held", "gil-released"])
def test_signal_handler_exception_ends_an_interrupted_ioctl(request_, mode):
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(request_), mode],
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the ioctl kept retrying EINTR and never ran the Python signal handler")
    if out.stdout.startswith("NO-SECCOMP"):
        pytest.skip(f"seccomp filters are not available here ({out.stdout.strip()})")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "STOPPED", out.stdout + out.stderr
