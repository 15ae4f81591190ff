"""``amdgpu_process`` on a non-simulated backend: a forked child with its own KFD process."""

from __future__ import annotations

from ._helpers import FAKE_GPU_CONFTEST


def test_forked_child(pytester, run):
    pytester.makeconftest(FAKE_GPU_CONFTEST)
    pytester.makepyfile("""
        import os, time
        import numpy as np
        import pytest
        from pytest_amdgpu.errors import GPUFaultError, GPUTimeoutError

        def work(device, value):
            queue = device.create_queue("pm4")
            done = device.create_signal(0)
            buf = device.alloc(4096, "gtt")
            queue.write_data(buf.gpu_address, [value])
            queue.signal(done, 1)
            done.wait(1, timeout=10)
            return int(buf.view(np.uint32)[0]), os.getpid(), device.gpu_id

        def test_run(amdgpu_device, amdgpu_process):
            value, pid, gpu = amdgpu_process.run(work, 99)
            assert value == 99 and pid != os.getpid() and gpu == amdgpu_device.gpu_id

        def chat(device, link):
            link.send(("hello", os.getpid()))
            return link.recv(timeout=10) * 2

        def test_link(amdgpu_process):
            task = amdgpu_process.start(chat)
            message, pid = task.recv(timeout=10)
            assert message == "hello" and pid == task.pid != os.getpid()
            task.send(21)
            assert task.result(timeout=10) == 42

        def boom(device):
            raise GPUFaultError("synthetic", address=0x1000, gpu_id=device.gpu_id,
                                reason="NotPresent")

        def test_exception_crosses_back(amdgpu_process):
            with pytest.raises(GPUFaultError) as info:
                amdgpu_process.run(boom)
            assert info.value.address == 0x1000

        def test_result_deadline(amdgpu_process):
            task = amdgpu_process.start(lambda device, link: time.sleep(30))
            with pytest.raises(GPUTimeoutError, match="no result within 0.5 s"):
                task.result(timeout=0.5)
            task.kill()
            assert task.done()
    """)
    run("--amdgpu-backend=fakegpu").assert_outcomes(passed=4)


def test_backend_peer_ports_run_in_this_process(pytester, run):
    # a backend that offers peer ports (here the simulator under another name, registered by a
    # plugin) gets a second KFD process on the same machine in a thread, never a fork: the
    # plugin asks the backend, not the backend's name
    pytester.makeconftest("""
        from pytest_amdgpu.sim.port import SimPort

        def make_port(**options):
            return SimPort(sim="gfx1100", record=options.get("record", False))

        def make_peer_port(port, **options):
            return SimPort(port.machine, record=options.get("record", False))

        def pytest_amdgpu_register_backends(register):
            register("peersim", make_port, None, "a simulator with peers", True,
                     make_peer_port)
    """)
    pytester.makepyfile("""
        import os

        def where(device):
            return os.getpid(), device.gpu_id, device.process.kfd.fd

        def test_peer(amdgpu_device, amdgpu_process):
            pid, gpu, fd = amdgpu_process.run(where)
            assert pid == os.getpid() and gpu == amdgpu_device.gpu_id
            assert "peer process in a thread" in repr(amdgpu_process)
    """)
    run("--amdgpu-backend=peersim").assert_outcomes(passed=1)
