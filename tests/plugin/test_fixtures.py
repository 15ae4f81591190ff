"""Fixtures: what they make is released, leaks error, faults fail with the GPU state."""

from __future__ import annotations

import json

from ._helpers import text

SIM = "--amdgpu-backend=sim"


def test_factories_release_what_they_made(pytester, run):
    pytester.makepyfile("""
        import numpy as np
        import pytest

        def test_make(amdgpu_device, amdgpu_buffer, amdgpu_signal, amdgpu_event, amdgpu_queue,
                      amdgpu_pm4_queue, amdgpu_aql_queue, amdgpu_sdma_queue, request):
            assert amdgpu_queue is amdgpu_pm4_queue
            assert (amdgpu_pm4_queue.kind, amdgpu_aql_queue.kind,
                    amdgpu_sdma_queue.kind) == ("pm4", "aql", "sdma")
            buf = amdgpu_buffer(8192, "gtt")
            sig = amdgpu_signal(3)
            ev = amdgpu_event()
            assert buf.size == 8192 and sig.value == 3
            owners = {o.owner for o in amdgpu_device.live_objects()}
            assert owners == {request.node.nodeid}
            # the PM4 queue works: RELEASE_MEM a value into the signal
            amdgpu_queue.signal(sig, 11)
            assert sig.wait(11, timeout=10) == 11
            buf.view(np.uint32)[:2] = [5, 6]
            assert list(buf.view(np.uint32)[:2]) == [5, 6]

        def test_clean_after(amdgpu_device):
            assert amdgpu_device.live_objects() == []

        @pytest.mark.parametrize("amdgpu_pm4_queue", [{"ring_size": 4096}], indirect=True)
        def test_queue_options(amdgpu_pm4_queue):
            assert amdgpu_pm4_queue.ring_size == 4096
    """)
    result = run(SIM)
    result.assert_outcomes(passed=3)


def test_leak_makes_a_passing_test_error(pytester, run):
    pytester.makepyfile("""
        import pytest

        @pytest.fixture(scope="module")
        def shared(amdgpu_device):
            buf = amdgpu_device.alloc(4096, "gtt")
            yield buf
            buf.free()

        def test_leaks(amdgpu_device, shared):
            amdgpu_device.alloc(4096, "vram")
            amdgpu_device.create_queue("pm4")

        def test_module_fixture_is_no_leak(amdgpu_device, shared):
            pass

        def test_failing_leaks_quietly(amdgpu_device):
            amdgpu_device.alloc(4096, "vram")
            assert False, "boom"

        def test_next_is_clean(amdgpu_device, shared):
            assert [o.description for o in amdgpu_device.live_objects()] == [shared.describe()]
    """)
    result = run(SIM)
    result.assert_outcomes(passed=3, failed=1, errors=1)
    out = text(result)
    assert "ERROR at teardown of test_leaks[gfx942]" in out
    assert ("amdgpu leak check: test_leak_makes_a_passing_test_error.py::test_leaks[gfx942] "
            "left 2 object(s) alive on the fixtures' devices (released now):") in out
    assert "gfx942: buffer: vram buffer of 4096 bytes" in out
    assert any(line.strip().startswith("gfx942: ") and "PM4 queue" in line
               for line in out.splitlines())
    assert "(owner test_leak_makes_a_passing_test_error.py::test_leaks[gfx942])" in out


FAULT_TEST = """
    import pytest_amdgpu

    UNMAPPED = 0x7000_0000_0000

    def test_fault(amdgpu_queue, amdgpu_signal):
        done = amdgpu_signal(0)
        amdgpu_queue.write_data(UNMAPPED, [0xdead])
        amdgpu_queue.signal(done, 1)
        done.wait(1, timeout=10)

    def test_after_fault(amdgpu_queue):
        pass
"""


def test_gpu_fault_fails_with_the_gpu_state(pytester, run):
    pytester.makepyfile(FAULT_TEST)
    pytester.makeconftest("""
        import json, pathlib

        def pytest_amdgpu_device_unhealthy(device, reason):
            pathlib.Path("unhealthy.json").write_text(json.dumps([device.key, reason]))

        def pytest_amdgpu_collect_artifacts(item, device, directory):
            (directory / "extra.txt").write_text(f"{item.name} {device.gpu_id:#x}")
    """)
    result = run(SIM, "--amdgpu-artifacts=art", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    out = text(result)
    # the failure names the fault, shows the decoded ring and the ioctl trace
    assert "GPUFaultError: GPU memory fault on GPU" in out
    assert "Captured amdgpu call" in out
    assert "--- GPU exceptions ---" in out
    assert "at address 0x700000000000" in out
    assert "WRITE_DATA" in out and "RELEASE_MEM" in out
    assert "CREATE_QUEUE(" in out
    # KFD evicts a faulting process's queues for good: the device fails its health check
    assert "failed: GPUFaultError" in out and "is unusable: its health check after" in out
    key, reason = json.loads((pytester.path / "unhealthy.json").read_text())
    assert key == "gfx942" and "test_fault[gfx942]" in reason
    art = pytester.path / "art" / "test_gpu_fault_fails_with_the_gpu_state.py__test_fault[gfx942]"
    names = sorted(p.name for p in art.iterdir())
    assert names == ["amdgpu.txt", "exceptions.txt", "extra.txt", "failure.txt",
                     "queues.txt", "trace.txt"]
    assert "0x700000000000" in (art / "exceptions.txt").read_text()
    assert "WRITE_DATA" in (art / "queues.txt").read_text()
    assert (art / "extra.txt").read_text().startswith("test_fault[gfx942] 0x")


def test_second_process_isolation(pytester, run):
    pytester.makepyfile("""
        import numpy as np
        import pytest
        from pytest_amdgpu.errors import GPUFaultError

        def write_and_read(device, value):
            queue = device.create_queue("pm4")
            done = device.create_signal(0)
            buf = device.alloc(4096, "gtt")
            queue.write_data(buf.gpu_address, [value])
            queue.signal(done, 1)
            done.wait(1, timeout=10)
            return int(buf.view(np.uint32)[0]), device.gpu_id

        def test_run(amdgpu_device, amdgpu_process):
            assert amdgpu_process.run(write_and_read, 0x1234) == (0x1234, amdgpu_device.gpu_id)

        def fault(device):
            queue = device.create_queue("pm4")
            done = device.create_signal(0)
            queue.write_data(0x7000_0000_0000, [1])
            queue.signal(done, 1)
            done.wait(1, timeout=10)

        def bystander(device, link, value):
            link.send("ready")
            assert link.recv(timeout=20) == "go"
            result = write_and_read(device, value)
            return result, [e.message() for e in device.pending_exceptions()]

        def test_fault_stays_in_its_process(amdgpu_device, amdgpu_process, amdgpu_queue,
                                            amdgpu_signal):
            other = amdgpu_process.start(bystander, 77)
            assert other.recv(timeout=20) == "ready"
            with pytest.raises(GPUFaultError, match="0x700000000000"):
                amdgpu_process.run(fault)
            other.send("go")
            (value, gpu), seen = other.result(timeout=20)
            assert value == 77 and seen == []
            # and this process still runs work
            done = amdgpu_signal(0)
            amdgpu_queue.signal(done, 5)
            assert done.wait(5, timeout=10) == 5
            assert amdgpu_device.pending_exceptions() == []

        def test_unpicklable_result_is_refused(amdgpu_process):
            with pytest.raises(Exception, match="must be picklable"):
                amdgpu_process.run(lambda device: device)
    """)
    result = run(SIM)
    result.assert_outcomes(passed=3)
