"""pytest-xdist support: a device pool on the controller and device-aware scheduling.

- ``-n auto`` starts one worker per selected device (``pytest_xdist_auto_num_workers``; the
  ``PYTEST_XDIST_AUTO_NUM_WORKERS`` variable still wins).
- The controller splits the selected devices into shares, one per worker, and hands a free share
  to each worker it configures (``pytest_configure_node`` → ``workerinput["amdgpu"]``). A
  worker that goes down returns its share; the replacement of a crashed worker gets the share
  the crashed worker returned (crashed shares come first), never "gwN's device".
- With the simulator each worker builds its own simulated machine from its share.
- With ``--dist load`` (the default of ``-n``) the scheduler sends each test that uses a device
  (``amdgpu_device[...]``) to the worker holding that device, and a test marked
  ``amdgpu_min_devices(n)`` to a worker holding at least n devices when there is one. Workers
  learn the device of every collected test and tell the controller through a small JSON file.
  Other ``--dist`` modes keep xdist's own scheduler; a worker then runs a simulated device it
  does not own on a private machine, and skips a hardware device it does not own.

This module is imported only when pytest-xdist is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import pytest
from xdist.scheduler import LoadScheduling

from .session import AmdgpuRun, plan_run

POOL_KEY = pytest.StashKey["DevicePool"]()


def is_controller(config: pytest.Config) -> bool:
    return (not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no"
            and bool(config.getoption("tx", None)))


class DevicePool:
    """The controller's shares of devices, handed to workers as they are configured."""

    def __init__(self, run: AmdgpuRun, num_workers: int) -> None:
        n = max(1, num_workers)
        slots = list(run.slots)
        self.shares: list[list[str]] = [[s.key for s in slots[i::n]] for i in range(n)]
        self.free: list[int] = list(range(n))
        self.held: dict[str, int] = {}                 # worker id -> share index
        self.route_dir = tempfile.mkdtemp(prefix="pytest-amdgpu-routes-")

    def take(self, worker: str) -> list[str]:
        if worker in self.held:
            return self.shares[self.held[worker]]
        if not self.free:
            return []
        idx = self.free.pop(0)
        self.held[worker] = idx
        return self.shares[idx]

    def give_back(self, worker: str, *, crashed: bool) -> None:
        """A worker went down. A crashed worker's share goes first in line (its remaining
        tests wait for the replacement); a finished worker's share goes last."""
        idx = self.held.pop(worker, None)
        if idx is None:
            return
        if crashed:
            self.free.insert(0, idx)
        else:
            self.free.append(idx)

    def cleanup(self) -> None:
        shutil.rmtree(self.route_dir, ignore_errors=True)


class DeviceRoutingScheduling(LoadScheduling):
    """``--dist load`` that keeps each device's tests on the worker holding the device."""

    def __init__(self, config: pytest.Config, log: Any, route_dir: str) -> None:
        super().__init__(config, log)
        self.route_dir = route_dir
        self.routes: dict[int, tuple[str | None, int]] = {}
        self.max_share = 0

    # which tests a node may run
    def _keys(self, node: Any) -> set[str]:
        data = getattr(node, "workerinput", {}).get("amdgpu") or {}
        return set(data.get("share", []))

    def _can_run(self, node: Any, index: int) -> bool:
        key, need = self.routes.get(index, (None, 0))
        keys = self._keys(node)
        if key is not None:
            return key in keys
        if need > 1 and self.max_share >= need:
            return len(keys) >= need
        return True

    def _load_routes(self) -> None:
        assert self.collection is not None
        data: dict[str, list] = {}
        try:
            for name in sorted(os.listdir(self.route_dir)):
                with open(os.path.join(self.route_dir, name), encoding="utf-8") as f:
                    data = json.load(f)
                break
        except (OSError, ValueError):
            data = {}
        index = {nodeid: i for i, nodeid in enumerate(self.collection)}
        for nodeid, (key, need) in data.items():
            i = index.get(nodeid)
            if i is not None:
                self.routes[i] = (key, int(need or 0))
        self.max_share = max((len(self._keys(n)) for n in self.nodes), default=0)

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self.nodes:
                self.check_schedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = next(iter(self.node2collection.values()))
        self.pending[:] = range(len(self.collection))
        if not self.collection:
            return
        self._load_routes()
        if self.maxschedchunk is None:
            self.maxschedchunk = len(self.collection)
        for node in self.nodes:
            self.check_schedule(node)

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if node.shutting_down:
            return
        self.max_share = max([self.max_share] + [len(self._keys(n)) for n in self.nodes])
        runnable = [i for i in self.pending if self._can_run(node, i)]
        if not runnable:
            node.shutdown()
            return
        num_nodes = max(1, len(self.node2pending))
        node_pending = self.node2pending[node]
        items_min = max(2, len(runnable) // num_nodes // 4)
        items_max = max(2, len(runnable) // num_nodes // 2)
        if len(node_pending) >= items_min:
            return
        if duration >= 0.1 and len(node_pending) >= 2:
            return
        count = min(items_max - len(node_pending),
                    max(2 - len(node_pending), self.maxschedchunk or len(runnable)))
        chosen = runnable[:max(count, 1)]
        chosen_set = set(chosen)
        self.pending[:] = [i for i in self.pending if i not in chosen_set]
        node_pending.extend(chosen)
        node.send_runtest_some(chosen)
        if not [i for i in self.pending if self._can_run(node, i)]:
            node.shutdown()

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.pending.insert(0, self.collection.index(item))
        for node in self.node2pending:
            self.check_schedule(node)


def write_routes(run: AmdgpuRun, items: list[pytest.Item], route_of) -> None:
    """Worker side: tell the controller which device (and device count) each test needs."""
    if not run.route_dir or not run.worker_id:
        return
    data = {item.nodeid: list(route_of(item)) for item in items}
    path = os.path.join(run.route_dir, f"routes-{run.worker_id}.json")
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass


class XdistHooks:
    """The xdist hooks, registered only when xdist is installed (optionalhook for -p no:xdist)."""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_auto_num_workers(self, config: pytest.Config) -> int | None:
        if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
            return None
        run = plan_run(config)
        return max(1, len(run.slots))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        config = node.config
        pool = config.stash.get(POOL_KEY, None)
        run = plan_run(config)
        if pool is None:
            pool = DevicePool(run, len(config.getoption("tx") or []) or 1)
            config.stash[POOL_KEY] = pool
        worker = node.workerinput.get("workerid", node.gateway.id)
        node.workerinput["amdgpu"] = {
            "backend": run.backend_name, "reason": run.backend_reason,
            "simulated": run.simulated, "slots": [s.to_json() for s in run.slots],
            "share": list(pool.take(worker)), "route_dir": pool.route_dir,
        }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        config = node.config
        pool = config.stash.get(POOL_KEY, None)
        worker = node.workerinput.get("workerid", node.gateway.id)
        if pool is not None:
            pool.give_back(worker, crashed=error is not None)
        output = getattr(node, "workeroutput", None) or {}
        data = output.get("amdgpu")
        if data:
            from .guard import collector_of

            collector_of(config).add_worker(worker, data)

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist", "no") != "load":
            return None
        pool = config.stash.get(POOL_KEY, None)
        if pool is None:
            return None
        return DeviceRoutingScheduling(config, log, pool.route_dir)
