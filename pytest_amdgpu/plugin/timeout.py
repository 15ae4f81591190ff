"""pytest-timeout integration through its ``pytest_timeout_set_timer`` / ``cancel_timer`` hooks.

For a test that uses the amdgpu fixtures the plugin arms pytest-timeout's timer itself, so that
when it fires the GPU state is captured first (the decoded ring around each live queue's read
pointer, the ioctl trace, pending fault events), then pytest-timeout's own action runs:

- ``signal`` method: the test fails with pytest-timeout's message and the amdgpu section; its
  teardown destroys the test's queues (the hung ones included), a health check runs on its
  devices before the next test, and the run goes on. A device that fails the check skips its
  remaining tests with the reason.
- ``thread`` method: pytest-timeout ends the process with ``os._exit(1)`` (no teardown can
  run). Before that the plugin prints the GPU state to the terminal, writes it under
  ``--amdgpu-artifacts`` and writes a partial ``--amdgpu-report``. Under xdist the worker dies
  and xdist replaces it, which gets a free device share; without xdist the run ends there.

Tests that use no amdgpu fixture keep pytest-timeout's default behaviour.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import pytest


def _timeout_module() -> Any:
    try:
        import pytest_timeout
    except ImportError:
        return None
    if not all(hasattr(pytest_timeout, n) for n in ("timeout_sigalrm", "timeout_timer")):
        return None
    return pytest_timeout


class TimeoutHooks:
    """Registered only when pytest-timeout is installed (optionalhook for -p no:timeout)."""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        from .guard import guard_of

        guard = guard_of(item)
        module = _timeout_module()
        if guard is None or module is None:
            return None
        method = settings.method
        if method == "signal" and threading.current_thread() is not threading.main_thread():
            method = "thread"
        if method == "signal":
            def handler(signum: int, frame: Any) -> None:
                __tracebackhide__ = True
                guard.on_timeout(item, settings.timeout, "signal")
                module.timeout_sigalrm(item, settings)

            def cancel() -> None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)

            item.cancel_timeout = cancel  # type: ignore[attr-defined]
            signal.signal(signal.SIGALRM, handler)
            signal.setitimer(signal.ITIMER_REAL, settings.timeout)
            return True

        def fire() -> None:
            try:
                text = guard.on_timeout(item, settings.timeout, "thread")
                stream = sys.__stderr__ or sys.stderr
                stream.write("\n" + "+" * 30 + " amdgpu: GPU state at the timeout " + "+" * 30
                             + "\n" + text + "\n")
                stream.flush()
            except Exception as exc:  # the process ends next; say why the dump is missing
                sys.stderr.write(f"amdgpu: capturing the GPU state failed: {exc!r}\n")
            module.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, fire)
        timer.name = f"pytest_amdgpu timeout {item.nodeid}"
        timer.daemon = True

        def cancel_thread() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel_thread  # type: ignore[attr-defined]
        timer.start()
        return True
