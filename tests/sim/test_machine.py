"""The simulated host: spec strings and the sysfs topology served through the port.

Expected property values are facts-kfd.md §6.3 (M300 dump for gfx942, TG dump for gfx1100,
rocminfo conversions for gfx90a); the key order is the kernel's node_show (§6.1, TOPO).
"""

from __future__ import annotations

import os

import pytest

from pytest_amdgpu.kfd import read_topology
from pytest_amdgpu.kfd.port import TOPOLOGY_PATH
from pytest_amdgpu.sim.machine import SimMachine, parse_spec
from pytest_amdgpu.sim.port import SimPort

from .helpers import StubEngine

NODE_KEYS_GPU = [
    "cpu_cores_count", "simd_count", "mem_banks_count", "caches_count", "io_links_count",
    "p2p_links_count", "cpu_core_id_base", "simd_id_base", "max_waves_per_simd",
    "lds_size_in_kb", "gds_size_in_kb", "num_gws", "wave_front_size", "array_count",
    "simd_arrays_per_engine", "cu_per_simd_array", "simd_per_cu", "max_slots_scratch_cu",
    "gfx_target_version", "vendor_id", "device_id", "location_id", "domain",
    "drm_render_minor", "hive_id", "num_sdma_engines", "num_sdma_xgmi_engines",
    "num_sdma_queues_per_engine", "num_cp_queues", "max_engine_clk_fcompute",
    "local_mem_size", "fw_version", "capability", "debug_prop", "sdma_fw_version",
    "unique_id", "num_xcc", "max_engine_clk_ccompute",
]

# facts §6.3 values
GFX942 = {"simd_count": 1216, "array_count": 32, "cu_per_simd_array": 10, "simd_per_cu": 4,
          "gfx_target_version": 90402, "device_id": 29857, "num_xcc": 8, "wave_front_size": 64,
          "num_sdma_engines": 2, "num_sdma_xgmi_engines": 14, "num_sdma_queues_per_engine": 8,
          "num_cp_queues": 24, "max_engine_clk_fcompute": 2100, "local_mem_size": 0,
          "fw_version": 166, "capability": 746037888, "debug_prop": 1511,
          "lds_size_in_kb": 64, "max_waves_per_simd": 8}
GFX1100 = {"simd_count": 192, "array_count": 12, "simd_arrays_per_engine": 2,
           "cu_per_simd_array": 8, "simd_per_cu": 2, "wave_front_size": 32,
           "gfx_target_version": 110000, "device_id": 29772, "num_xcc": 1,
           "num_sdma_queues_per_engine": 6, "num_cp_queues": 8, "capability": 671588992,
           "debug_prop": 1495, "max_waves_per_simd": 16, "local_mem_size": 0, "hive_id": 0}
GFX90A = {"simd_count": 440, "array_count": 8, "simd_per_cu": 4, "gfx_target_version": 90010,
          "device_id": 29704, "max_engine_clk_fcompute": 1700, "wave_front_size": 64,
          "num_xcc": 1, "local_mem_size": 0}


def _props(text: str) -> list[tuple[str, int]]:
    out = []
    for line in text.splitlines():
        k, v = line.split(" ")
        out.append((k, int(v)))
    return out


@pytest.fixture(scope="module")
def port3():
    p = SimPort(sim="gfx942x2,gfx1100", engine_factory=StubEngine)
    yield p
    p.close_port()


def test_parse_spec_expands_counts_in_order():
    assert parse_spec("gfx942x2,gfx1100") == ["gfx942", "gfx942", "gfx1100"]
    assert parse_spec(" gfx90ax2 , gfx942 ") == ["gfx90a", "gfx90a", "gfx942"]
    assert parse_spec("gfx1100") == ["gfx1100"]


@pytest.mark.parametrize("bad,part", [
    ("gfx999", "gfx999"), ("gfx942,navi", "navi"), ("gfx942x", "gfx942x"),
    ("gfx942x0", "gfx942x0"), ("", None), ("gfx942,,gfx1100", ""),
])
def test_parse_spec_errors_name_the_part_and_known_targets(bad, part):
    with pytest.raises(ValueError) as ei:
        SimMachine(bad, engine_factory=StubEngine)
    msg = str(ei.value)
    for t in ("gfx90a", "gfx942", "gfx1100"):
        assert t in msg or part == "gfx942x0"
    if part:
        assert repr(part) in msg


def test_topology_read_by_the_kfd_layer(port3):
    topo = read_topology(port3)
    assert [n.index for n in topo.nodes] == [0, 1, 2, 3]
    cpu, *gpus = topo.nodes
    assert cpu.gpu_id == 0 and not cpu.is_gpu
    assert [g.target_name for g in gpus] == ["gfx942", "gfx942", "gfx1100"]
    assert [g.drm_render_minor for g in gpus] == [128, 129, 130]
    ids = [g.gpu_id for g in gpus]
    assert len(set(ids)) == 3 and all(0 < i < 0x10000 for i in ids)
    for g in gpus:
        expect = GFX942 if g.target_name == "gfx942" else GFX1100
        for k, v in expect.items():
            assert g.properties[k] == v, (g.target_name, k)


def test_property_key_order_is_the_kernels(port3):
    for node in (1, 3):
        text = port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/{node}/properties")
        assert [k for k, _ in _props(text)] == NODE_KEYS_GPU
        assert text.endswith("\n")
    cpu = [k for k, _ in _props(port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/0/properties"))]
    assert cpu == [*NODE_KEYS_GPU[:29], "max_engine_clk_ccompute"]


def test_gfx90a_preset():
    p = SimPort(sim="gfx90a", engine_factory=StubEngine)
    try:
        g = read_topology(p).gpus[0]
        for k, v in GFX90A.items():
            assert g.properties[k] == v, k
        mb = p.read_sysfs(f"{TOPOLOGY_PATH}/nodes/1/mem_banks/0/properties")
        assert dict(_props(mb))["size_in_bytes"] == 68702699520   # RI-250 pool
    finally:
        p.close_port()


def test_counts_match_directories_and_gfx1100_caches(port3):
    for node in range(4):
        base = f"{TOPOLOGY_PATH}/nodes/{node}"
        props = dict(_props(port3.read_sysfs(f"{base}/properties")))
        for key, sub in (("mem_banks_count", "mem_banks"), ("caches_count", "caches"),
                         ("io_links_count", "io_links"), ("p2p_links_count", "p2p_links")):
            assert len(port3.list_sysfs(f"{base}/{sub}")) == props[key], (node, sub)
    g1100 = dict(_props(port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/3/properties")))
    assert g1100["caches_count"] == 206            # the TG dump's value
    cache = port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/3/caches/0/properties")
    keys = [line.split(" ")[0] for line in cache.splitlines()]
    assert keys == ["processor_id_low", "level", "size", "cache_line_size",
                    "cache_lines_per_tag", "association", "latency", "type", "sibling_map"]


def test_io_links_pcie_to_cpu_and_xgmi_inside_the_hive(port3):
    def links(node):
        base = f"{TOPOLOGY_PATH}/nodes/{node}/io_links"
        return [dict(_props(port3.read_sysfs(f"{base}/{i}/properties")))
                for i in port3.list_sysfs(base)]

    cpu = links(0)
    assert sorted((lk["node_to"], lk["type"]) for lk in cpu) == [(1, 2), (2, 2), (3, 2)]
    n1 = links(1)
    assert (0, 2) in [(lk["node_to"], lk["type"]) for lk in n1]
    assert (2, 11) in [(lk["node_to"], lk["type"]) for lk in n1]          # XGMI to the peer 942
    assert all(lk["node_to"] != 3 for lk in n1)                          # no XGMI to the 1100
    assert [(lk["node_to"], lk["type"]) for lk in links(3)] == [(0, 2)]
    props = [dict(_props(port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/{n}/properties")))
             for n in (1, 2, 3)]
    assert props[0]["hive_id"] == props[1]["hive_id"] == 10631624818852212319   # M300
    assert props[2]["hive_id"] == 0


def test_vram_in_mem_banks_not_local_mem_size(port3):
    props = dict(_props(port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/1/properties")))
    assert props["local_mem_size"] == 0
    mb = dict(_props(port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/1/mem_banks/0/properties")))
    assert mb["size_in_bytes"] > 0 and mb["heap_type"] == 1


def test_sysfs_errors_are_oserrors(port3):
    with pytest.raises(FileNotFoundError):
        port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/9/properties")
    with pytest.raises(IsADirectoryError):
        port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes")
    with pytest.raises(NotADirectoryError):
        port3.list_sysfs(f"{TOPOLOGY_PATH}/generation_id")
    assert port3.read_sysfs("/sys/class/kfd/kfd/topology/nodes/1/gpu_id") == \
        port3.read_sysfs(f"{TOPOLOGY_PATH}/nodes/1/gpu_id")


def test_machines_coexist_and_gpu_ids_are_stable():
    a = SimMachine("gfx942x2", engine_factory=StubEngine)
    b = SimMachine("gfx942x2", engine_factory=StubEngine)
    c = SimMachine("gfx1100", engine_factory=StubEngine)
    try:
        assert [d.gpu_id for d in a.devices] == [d.gpu_id for d in b.devices]
        assert a.devices[0].gpu_id != a.devices[1].gpu_id
        assert a.devices[0] is not b.devices[0]
        assert c.devices[0].target.name == "gfx1100"
    finally:
        for m in (a, b, c):
            m.close()
    assert all(("shutdown", None) in d.engine.calls for d in a.devices)


def test_vram_size_option_and_available_memory():
    p = SimPort(sim="gfx1100", vram_size=64 << 20, engine_factory=StubEngine)
    try:
        from pytest_amdgpu.kfd import KFD

        kfd = KFD(p)
        gid = read_topology(p).gpus[0].gpu_id
        avail = kfd.available_memory(gpu_id=gid)
        # amdgpu_amdkfd_get_available_memory: VRAM - reserved_for_pt, aligned down to 2 MiB;
        # reserved_for_pt = max(host RAM >> 14, AMDGPU_VM_RESERVED_VRAM = 8 MiB)
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        assert avail == ((64 << 20) - max(ram >> 14, 8 << 20)) // (2 << 20) * (2 << 20)
    finally:
        p.close_port()
