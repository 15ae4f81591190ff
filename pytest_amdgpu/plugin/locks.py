"""One ``flock`` per GPU, so two test runs on one host never share a GPU without knowing.

The lock file lives in ``--amdgpu-lock-dir`` (default ``<tmp>/pytest-amdgpu-locks``, shared by
all users: the directory is sticky and world-writable, the files world-writable). The holder
writes who it is into the file. The kernel drops an flock when its process dies, even on
SIGKILL, so a crashed run never leaves a GPU locked.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import sys
import time
from collections.abc import Callable


class DeviceLockTimeout(Exception):
    """The device stayed locked by another run for longer than the lock timeout."""


class DeviceLock:
    """An exclusive, non-blocking-polled flock on ``<directory>/<name>.lock``."""

    POLL_S = 0.25

    def __init__(self, directory: str, name: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, f"{name}.lock")
        self.fd: int | None = None

    def _open(self) -> int:
        try:
            os.makedirs(self.directory, exist_ok=True)
            os.chmod(self.directory, 0o1777)
        except OSError:
            pass  # someone else's directory: usable as long as we can create files in it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.fchmod(fd, 0o666)
        except OSError:
            pass
        return fd

    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it (best effort)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                return f.read().strip() or "unknown"
        except OSError:
            return "unknown"

    def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        info = (f"pid {os.getpid()} user {_user()} host {socket.gethostname()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:300]}\n")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        except OSError:
            pass
        return True

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; raises DeviceLockTimeout."""
        if self.try_acquire():
            return
        if on_wait is not None:
            on_wait(self.holder())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(min(self.POLL_S, max(0.0, deadline - time.monotonic())))
            if self.try_acquire():
                return
        raise DeviceLockTimeout(
            f"{self.path} is held by another run ({self.holder()}) for more than {timeout:g} s "
            "(--amdgpu-lock-timeout)")

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
