"""Fixtures for the plugin's own tests: pytest runs in subprocesses (pytester)."""

from __future__ import annotations

import pytest

ENV_VARS = [
    "PYTEST_AMDGPU_BACKEND", "PYTEST_AMDGPU_REQUIRE_HW", "PYTEST_AMDGPU_SIM",
    "PYTEST_AMDGPU_DEVICES", "PYTEST_AMDGPU_TIMEOUT", "PYTEST_AMDGPU_ARTIFACTS",
    "PYTEST_AMDGPU_LOCK_DIR", "PYTEST_AMDGPU_LOCK_TIMEOUT", "PYTEST_AMDGPU_REPORT",
    "PYTEST_AMDGPU_KNOWN_FAILURES", "PYTEST_XDIST_AUTO_NUM_WORKERS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS",
]


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory):
    """``run(*args, amdgpu=True)``: pytest in a subprocess in the pytester directory, with no
    PYTEST_AMDGPU_* variables from the caller's environment and (with ``amdgpu``) a private
    lock directory."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    lock_dir = tmp_path_factory.mktemp("locks")

    def _run(*args: str, amdgpu: bool = True, timeout: float = 240) -> pytest.RunResult:
        extra = [f"--amdgpu-lock-dir={lock_dir}"] if amdgpu else []
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *extra, *args,
                                             timeout=timeout)
    return _run
