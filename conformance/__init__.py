"""pytest_amdgpu's packet-level conformance suite for the Linux compute interface (/dev/kfd).

Run it from a checkout with ``pytest -p amdgpu conformance`` or, installed, with
``pytest -p amdgpu --pyargs pytest_amdgpu.conformance``; add ``--amdgpu-sim=gfx90a,gfx942,gfx1100``
for the simulated GPUs or ``--amdgpu-backend=kfd`` for the real one. The tests use only the
plugin's fixtures and markers and the public runtime, packet and kernel APIs, so they run
unchanged on hardware and on the simulator. Every test names the peer cases it covers
(KFDTest, rocrtst, libdrm / IGT amdgpu) in its docstring; `known_failures.toml` lists the
per-target known failures (empty unless a target genuinely cannot support a behaviour).
"""
