"""``amdgpu_process``: run code in a second KFD process on the same GPU, for isolation tests.

The same test code works on both backends:

- hardware (any backend without peer ports): each call forks a child, which opens its own
  /dev/kfd (the driver makes a new KFD process for the child's address space), opens the same
  GPU and runs the function; the result comes back pickled through a pipe. The child ends with
  ``os._exit`` when the function returns, so the driver frees everything it made.
- the simulator (any backend with ``Backend.make_peer_port``): each call opens a second KFD
  process on the very same simulated machine through a peer port of the device's port, runs the
  function in a thread, and closes that process afterwards. Results, exceptions and messages
  make the same pickle round trip as on hardware, so a test that works here does not break on a
  GPU for passing something that cannot cross a process boundary.

Use::

    def test_fault_stays_in_its_process(amdgpu_device, amdgpu_process):
        def victim(device, link):            # runs in the other process
            ...                               # create a queue, a signal
            link.send("ready")
            link.recv(timeout=10)             # wait until the parent faulted
            ...                               # run work, check no exception arrived
            return device.pending_exceptions() == []
        task = amdgpu_process.start(victim)
        assert task.recv(timeout=10) == "ready"
        ...                                   # fault the GPU here, in this process
        task.send("go")
        assert task.result(timeout=10)

``run(fn, *args, **kw)`` is ``start`` without the link: ``fn(device, *args, **kw)``.

Deliberate GPU faults belong in the other process: the driver keeps every queue of a faulting
process evicted on that GPU for the rest of the process's life (facts-kfd.md §4 I6), so a
fault in the test process makes the device fail its health check and skips its other tests.
"""

from __future__ import annotations

import os
import pickle
import queue as _queue
import select
import signal as _signal
import struct
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AmdgpuError, GPUTimeoutError

if TYPE_CHECKING:
    from ..backends import Backend


class OtherProcessError(AmdgpuError):
    """The function in the other process raised something that could not be sent back."""


def _dumps(obj: Any, what: str) -> bytes:
    try:
        return pickle.dumps(obj)
    except Exception as exc:
        raise OtherProcessError(
            f"amdgpu_process: {what} must be picklable, because it crosses a process boundary "
            f"on hardware: {type(exc).__name__}: {exc}") from None


def _pack_exception(exc: BaseException) -> bytes:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        payload = pickle.dumps(exc)
        pickle.loads(payload)
    except Exception:
        payload = b""
    return pickle.dumps(("err", payload, text, f"{type(exc).__name__}: {exc}"))


def _unpack(message: bytes) -> Any:
    kind, *rest = pickle.loads(message)
    if kind == "ok":
        return pickle.loads(rest[0])
    payload, text, short = rest
    exc: BaseException | None = None
    if payload:
        try:
            exc = pickle.loads(payload)
        except Exception:
            exc = None
    if exc is None:
        raise OtherProcessError(f"the other process raised {short}\n{text}")
    if hasattr(exc, "add_note"):
        exc.add_note("raised in the other KFD process (amdgpu_process):\n" + text)
    raise exc


class Link:
    """The function's side of the message channel (``send``, ``recv``)."""

    def __init__(self, send: Callable[[bytes], None], recv: Callable[[float | None], bytes],
                 default_timeout: float) -> None:
        self._send = send
        self._recv = recv
        self.default_timeout = default_timeout

    def send(self, obj: Any) -> None:
        self._send(_dumps(obj, "a message"))

    def recv(self, timeout: float | None = None) -> Any:
        t = self.default_timeout if timeout is None else timeout
        return pickle.loads(self._recv(t))


class ProcessTask:
    """A function running in the other process: ``send``, ``recv``, ``result``, ``done``."""

    def __init__(self, owner: OtherProcess, description: str) -> None:
        self.owner = owner
        self.description = description
        self.pid: int | None = None
        self._result: bytes | None = None

    def send(self, obj: Any) -> None:
        self._put(_dumps(obj, "a message"))

    def recv(self, timeout: float | None = None) -> Any:
        t = self.owner.timeout if timeout is None else timeout
        return pickle.loads(self._get(t))

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the function to return; its return value, or its exception raised here."""
        if self._result is None:
            t = self.owner.timeout if timeout is None else timeout
            self._result = self._wait(t)
        return _unpack(self._result)

    # backend-specific
    def _put(self, data: bytes) -> None:
        raise NotImplementedError

    def _get(self, timeout: float) -> bytes:
        raise NotImplementedError

    def _wait(self, timeout: float) -> bytes:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def _timeout(self, what: str, timeout: float) -> GPUTimeoutError:
        return GPUTimeoutError(f"amdgpu_process: {self.description}: no {what} within "
                               f"{timeout:g} s (--amdgpu-timeout or timeout=)")


# --- a peer port: a second KFD process on the same (simulated) machine, in a thread ----------

class _ThreadTask(ProcessTask):
    def __init__(self, owner: OtherProcess, description: str, body: Callable[[Link], Any]
                 ) -> None:
        super().__init__(owner, description)
        self._to_child: _queue.Queue[bytes] = _queue.Queue()
        self._to_parent: _queue.Queue[bytes] = _queue.Queue()
        self._done: _queue.Queue[bytes] = _queue.Queue()
        self._finished = threading.Event()

        def recv(timeout: float | None) -> bytes:
            try:
                return self._to_child.get(timeout=timeout)
            except _queue.Empty:
                raise self._timeout("message from the test process", timeout or 0) from None

        link = Link(self._to_parent.put, recv, owner.timeout)

        def main() -> None:
            try:
                value = body(link)
                message = pickle.dumps(("ok", _dumps(value, "the function's result")))
            except BaseException as exc:
                message = _pack_exception(exc)
            self._done.put(message)
            self._finished.set()

        self._thread = threading.Thread(target=main, name=f"amdgpu_process {description}",
                                        daemon=True)
        self._thread.start()

    def _put(self, data: bytes) -> None:
        self._to_child.put(data)

    def _get(self, timeout: float) -> bytes:
        try:
            return self._to_parent.get(timeout=timeout)
        except _queue.Empty:
            raise self._timeout("message from the other process", timeout) from None

    def _wait(self, timeout: float) -> bytes:
        try:
            return self._done.get(timeout=timeout)
        except _queue.Empty:
            raise self._timeout("result", timeout) from None

    def done(self) -> bool:
        return self._finished.is_set()

    def kill(self) -> None:
        """A thread cannot be killed; closing its peer process makes its calls fail."""


# --- hardware: a forked child ------------------------------------------------------------------

def _write_msg(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_msg(fd: int, timeout: float | None) -> bytes:
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = struct.unpack("<Q", _read_exact(fd, 8, deadline))
    return _read_exact(fd, size, deadline)


class _ForkTask(ProcessTask):
    def __init__(self, owner: OtherProcess, description: str, body: Callable[[Link], Any]
                 ) -> None:
        super().__init__(owner, description)
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self._status: bytes | None = None
        self._inbox: list[bytes] = []
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 0
            try:
                os.close(self._to_child)
                os.close(self._from_child)

                def recv(timeout: float | None) -> bytes:
                    try:
                        return _read_msg(to_child_r, timeout)
                    except TimeoutError:
                        raise self._timeout("message from the test process",
                                            timeout or 0) from None

                link = Link(lambda d: _write_msg(from_child_w, b"m" + d), recv, owner.timeout)
                try:
                    value = body(link)
                    message = pickle.dumps(("ok", _dumps(value, "the function's result")))
                except BaseException as exc:
                    message = _pack_exception(exc)
                _write_msg(from_child_w, b"r" + message)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        self.pid = pid
        os.close(to_child_r)
        os.close(from_child_w)

    def _pump(self, timeout: float, want: str) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            if want == "m" and self._inbox:
                return self._inbox.pop(0)
            if want == "r" and self._status is not None:
                return self._status
            try:
                data = _read_msg(self._from_child, max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise self._timeout("result" if want == "r" else "message from the other "
                                    "process", timeout) from None
            except EOFError:
                self._reap()
                raise OtherProcessError(f"amdgpu_process: {self.description}: the child "
                                        f"process {self.pid} ended without a result") from None
            if data[:1] == b"m":
                self._inbox.append(data[1:])
            else:
                self._status = data[1:]
                self._reap()

    def _put(self, data: bytes) -> None:
        _write_msg(self._to_child, data)

    def _get(self, timeout: float) -> bytes:
        return self._pump(timeout, "m")

    def _wait(self, timeout: float) -> bytes:
        return self._pump(timeout, "r")

    def _reap(self) -> None:
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def done(self) -> bool:
        if self._status is not None or self.pid is None:
            return True
        pid, _ = os.waitpid(self.pid, os.WNOHANG)
        return pid != 0

    def kill(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()


# --- the fixture object ------------------------------------------------------------------------

class OtherProcess:
    """The ``amdgpu_process`` fixture: a second KFD process on the test's device."""

    def __init__(self, device: Any, backend: Backend, timeout: float) -> None:
        self.device = device            # the test process's Device (not usable in the other)
        self.backend = backend
        self.in_thread = backend.make_peer_port is not None
        self.target = device.name
        self.gpu_id = device.gpu_id
        self.index = device.index
        self.timeout = timeout
        self.tasks: list[ProcessTask] = []

    def __repr__(self) -> str:
        kind = "peer process in a thread" if self.in_thread else "forked child"
        return f"<amdgpu_process: {kind} on {self.target} gpu_id {self.gpu_id:#x}>"

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None,
            **kwargs: Any) -> Any:
        """Run ``fn(device, *args, **kwargs)`` in a fresh KFD process; return its result."""
        task = self._start(lambda device, link: fn(device, *args, **kwargs),
                           getattr(fn, "__name__", "function"))
        return task.result(timeout)

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ProcessTask:
        """Start ``fn(device, link, *args, **kwargs)`` in a fresh KFD process; returns a task
        with ``send``, ``recv(timeout)``, ``result(timeout)`` and ``done()``."""
        return self._start(lambda device, link: fn(device, link, *args, **kwargs),
                           getattr(fn, "__name__", "function"))

    def _start(self, call: Callable[[Any, Link], Any], name: str) -> ProcessTask:
        if self.in_thread:
            task: ProcessTask = _ThreadTask(self, name, self._peer_body(call))
        else:
            task = _ForkTask(self, name, self._fork_body(call))
        self.tasks.append(task)
        return task

    def _peer_body(self, call: Callable[[Any, Link], Any]) -> Callable[[Link], Any]:
        make_peer_port = self.backend.make_peer_port
        parent_port = self.device.port

        def body(link: Link) -> Any:
            from ..runtime import open_device

            port = make_peer_port(parent_port, record=True)
            try:
                dev = open_device(port=port, index=self.index)
                try:
                    return call(dev, link)
                finally:
                    dev.process.close()
            finally:
                port.close_port()
        return body

    def _fork_body(self, call: Callable[[Any, Link], Any]) -> Callable[[Link], Any]:
        name = self.backend.name
        gpu_id = self.gpu_id

        def body(link: Link) -> Any:
            from ..runtime import open_devices

            devices = open_devices(backend=name, record=True)
            chosen = [d for d in devices if d.gpu_id == gpu_id]
            if not chosen:
                raise OtherProcessError(f"amdgpu_process: GPU {gpu_id:#x} is not visible in "
                                        "the child process")
            for d in devices:
                if d is not chosen[0]:
                    d.close()
            return call(chosen[0], link)
        return body

    def close(self) -> list[str]:
        """End every task still running; returns a line per task that had to be stopped."""
        stopped = []
        for task in self.tasks:
            if not task.done():
                try:
                    task._wait(min(self.timeout, 2.0))
                except Exception:
                    task.kill()
                    stopped.append(f"amdgpu_process task {task.description} was still running "
                                   "at teardown and was stopped")
        self.tasks.clear()
        return stopped
