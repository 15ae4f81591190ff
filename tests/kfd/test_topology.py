"""The sysfs topology reader on realistic and on malformed trees built in tmp_path.

Property values are those of ../shared/reference/facts-kfd.md §6.3 (sources cited there):
gfx90a = one MI250X GCD (rocminfo RI-250X / RI-250; cu_per_simd_array and the SDMA/CP queue
counts are marked NOT SOURCED in the sheet), gfx942 = MI300X in SPX mode (full node dump M300,
num_xcc 8 also in the RVS doc), gfx1100 = RX 7900 XTX (tinygrad mock profile TG). CPU node
values are the M300 CPU node. Key order follows the kernel's node_show (§6.1).
"""

from __future__ import annotations

import pathlib

import pytest

from pytest_amdgpu.errors import TopologyError
from pytest_amdgpu.kfd import LinuxPort, read_topology
from pytest_amdgpu.kfd.port import TOPOLOGY_PATH
from pytest_amdgpu.targets import get_target, queue_sizes

CPU_NODE = [
    ("cpu_cores_count", 96), ("simd_count", 0), ("mem_banks_count", 1), ("caches_count", 0),
    ("io_links_count", 5), ("p2p_links_count", 3), ("cpu_core_id_base", 0),
    ("simd_id_base", 0), ("max_waves_per_simd", 0), ("lds_size_in_kb", 0),
    ("gds_size_in_kb", 0), ("num_gws", 0), ("wave_front_size", 0), ("array_count", 0),
    ("simd_arrays_per_engine", 0), ("cu_per_simd_array", 0), ("simd_per_cu", 0),
    ("max_slots_scratch_cu", 0), ("gfx_target_version", 0), ("vendor_id", 0),
    ("device_id", 0), ("location_id", 0), ("domain", 0), ("drm_render_minor", 0),
    ("hive_id", 0), ("num_sdma_engines", 0), ("num_sdma_xgmi_engines", 0),
    ("num_sdma_queues_per_engine", 0), ("num_cp_queues", 0), ("max_engine_clk_ccompute", 2400),
]


def gfx90a_node(render_minor: int = 128) -> list[tuple[str, object]]:
    # no num_xcc line: kernels before the NUM_XCC patch do not print it
    return [
        ("cpu_cores_count", 0), ("simd_count", 440), ("mem_banks_count", 1),
        ("caches_count", 2), ("io_links_count", 1), ("p2p_links_count", 0),
        ("cpu_core_id_base", 0), ("simd_id_base", 2147487744), ("max_waves_per_simd", 8),
        ("lds_size_in_kb", 64), ("gds_size_in_kb", 0), ("num_gws", 64),
        ("wave_front_size", 64), ("array_count", 8), ("simd_arrays_per_engine", 1),
        ("cu_per_simd_array", 14), ("simd_per_cu", 4), ("max_slots_scratch_cu", 32),
        ("gfx_target_version", 90010), ("vendor_id", 4098), ("device_id", 29704),
        ("location_id", 50688), ("domain", 0), ("drm_render_minor", render_minor),
        ("hive_id", 0), ("num_sdma_engines", 2), ("num_sdma_xgmi_engines", 3),
        ("num_sdma_queues_per_engine", 8), ("num_cp_queues", 24),
        ("max_engine_clk_fcompute", 1700), ("local_mem_size", 0), ("fw_version", 78),
        ("capability", 0), ("sdma_fw_version", 8), ("unique_id", 0),
        ("max_engine_clk_ccompute", 2400),
    ]


def gfx942_node(render_minor: int, location_id: int, *, hex_unique_id: bool = False):
    return [
        ("cpu_cores_count", 0), ("simd_count", 1216), ("mem_banks_count", 1),
        ("caches_count", 626), ("io_links_count", 7), ("p2p_links_count", 1),
        ("cpu_core_id_base", 0), ("simd_id_base", 2147487784), ("max_waves_per_simd", 8),
        ("lds_size_in_kb", 64), ("gds_size_in_kb", 0), ("num_gws", 64),
        ("wave_front_size", 64), ("array_count", 32), ("simd_arrays_per_engine", 1),
        ("cu_per_simd_array", 10), ("simd_per_cu", 4), ("max_slots_scratch_cu", 32),
        ("gfx_target_version", 90402), ("vendor_id", 4098), ("device_id", 29857),
        ("location_id", location_id), ("domain", 0), ("drm_render_minor", render_minor),
        ("hive_id", 10631624818852212319), ("num_sdma_engines", 2),
        ("num_sdma_xgmi_engines", 14), ("num_sdma_queues_per_engine", 8),
        ("num_cp_queues", 24), ("max_engine_clk_fcompute", 2100), ("local_mem_size", 0),
        ("fw_version", 166), ("capability", 746037888), ("debug_prop", 1511),
        ("sdma_fw_version", 22),
        ("unique_id", f"{4376936076086227261:016x}" if hex_unique_id else 4376936076086227261),
        ("num_xcc", 8), ("max_engine_clk_ccompute", 2400),
    ]


GFX1100_NODE = [
    ("cpu_cores_count", 0), ("simd_count", 192), ("mem_banks_count", 1),
    ("caches_count", 206), ("io_links_count", 1), ("p2p_links_count", 5),
    ("cpu_core_id_base", 0), ("simd_id_base", 2147488032), ("max_waves_per_simd", 16),
    ("lds_size_in_kb", 64), ("gds_size_in_kb", 0), ("num_gws", 64), ("wave_front_size", 32),
    ("array_count", 12), ("simd_arrays_per_engine", 2), ("cu_per_simd_array", 8),
    ("simd_per_cu", 2), ("max_slots_scratch_cu", 32), ("gfx_target_version", 110000),
    ("vendor_id", 4098), ("device_id", 29772), ("location_id", 34304), ("domain", 0),
    ("drm_render_minor", 128), ("hive_id", 0), ("num_sdma_engines", 2),
    ("num_sdma_xgmi_engines", 0), ("num_sdma_queues_per_engine", 6), ("num_cp_queues", 8),
    ("max_engine_clk_fcompute", 2482), ("local_mem_size", 0), ("fw_version", 2140),
    ("capability", 671588992), ("debug_prop", 1495), ("sdma_fw_version", 20),
    ("unique_id", 11673270660693242239), ("num_xcc", 1), ("max_engine_clk_ccompute", 2400),
]


def props_text(props) -> str:
    return "".join(f"{k} {v}\n" for k, v in props)


def write_tree(tmp_path: pathlib.Path, nodes: list[dict], generation: int = 1) -> pathlib.Path:
    root = tmp_path / TOPOLOGY_PATH.lstrip("/")
    (root / "nodes").mkdir(parents=True)
    (root / "generation_id").write_text(f"{generation}\n")
    (root / "system_properties").write_text("platform_oem 0\nplatform_id 0\nplatform_rev 0\n")
    for i, node in enumerate(nodes):
        d = root / "nodes" / str(i)
        d.mkdir()
        (d / "gpu_id").write_text(f"{node['gpu_id']}\n")
        if "name" in node:
            (d / "name").write_text(node["name"] + "\n")
        (d / "properties").write_text(node.get("text") or props_text(node["props"]))
        for sub in ("mem_banks", "caches", "io_links", "p2p_links"):
            for j, entry in enumerate(node.get(sub, [])):
                e = d / sub / str(j)
                e.mkdir(parents=True)
                (e / "properties").write_text(props_text(entry))
    return root


def vram_bank(size: int):
    # mem_show order; heap_type 1 = FB_PUBLIC
    return [("heap_type", 1), ("size_in_bytes", size), ("flags", 0), ("width", 4096),
            ("mem_clk_max", 1600)]


XGMI_LINK = [("type", 11), ("version_major", 0), ("version_minor", 0), ("node_from", 2),
             ("node_to", 3), ("weight", 15), ("min_latency", 0), ("max_latency", 0),
             ("min_bandwidth", 0), ("max_bandwidth", 0), ("recommended_transfer_size", 0),
             ("flags", 1)]
L1_CACHE = [("processor_id_low", 2147487744), ("level", 1), ("size", 16),
            ("cache_line_size", 64), ("cache_lines_per_tag", 1), ("association", 0),
            ("latency", 0), ("type", 5)]


def read(tmp_path):
    return read_topology(LinuxPort(root=str(tmp_path)))


# -- realistic trees --------------------------------------------------------------------------

def test_cpu_plus_gfx90a(tmp_path):
    cache = [*L1_CACHE, ("sibling_map", "1,0,0,0")]
    write_tree(tmp_path, [
        {"gpu_id": 0, "name": "", "props": CPU_NODE},
        {"gpu_id": 45236, "name": "aldebaran",
         "props": [*gfx90a_node(), ("capability2", 1), ("a_key_from_the_future", 7)],
         "mem_banks": [vram_bank(68702699520)], "caches": [cache, L1_CACHE]},
    ])
    topo = read(tmp_path)
    assert topo.generation_id == 1
    assert topo.system_properties == {"platform_oem": 0, "platform_id": 0, "platform_rev": 0}
    assert [n.index for n in topo.nodes] == [0, 1]
    cpu, gpu = topo.nodes
    assert not cpu.is_gpu and cpu.target_name is None and cpu.target is None
    assert cpu.prop("cpu_cores_count") == 96 and cpu.mem_banks == []
    assert topo.gpus == [gpu] and topo.cpus == [cpu]
    assert gpu.gpu_id == 45236 and gpu.name == "aldebaran"
    assert gpu.target_name == "gfx90a" and gpu.target is get_target("gfx90a")
    assert gpu.cu_count == 110 and gpu.simd_per_cu == 4 and gpu.wave_front_size == 64
    assert gpu.num_xcc == 1                                  # key absent → 1
    assert gpu.local_mem_size == 68702699520                 # from mem_banks, not the 0 key
    assert gpu.prop("local_mem_size") == 0
    assert gpu.render_node == "/dev/dri/renderD128" and gpu.drm_render_minor == 128
    assert (gpu.num_sdma_engines, gpu.num_sdma_xgmi_engines, gpu.num_sdma_queues_per_engine,
            gpu.num_cp_queues) == (2, 3, 8, 24)
    assert gpu.device_id == 0x7408 and gpu.pci_address == "0000:c6:00.0"
    assert gpu.properties["a_key_from_the_future"] == 7      # unknown keys are kept
    assert gpu.caches[0]["sibling_map"] == (1, 0, 0, 0) and gpu.caches[1]["level"] == 1
    assert topo.node_by_gpu_id(45236) is gpu
    with pytest.raises(KeyError, match="45236"):
        topo.node_by_gpu_id(1)


def test_eight_gfx942_with_eight_xccs(tmp_path):
    cpus = [{"gpu_id": 0, "name": "", "props": CPU_NODE} for _ in range(2)]
    gpus = [{"gpu_id": 0x1000 + 0x111 * i, "name": "ip discovery",
             # M300 mock: render minors step by 8 between GPUs
             "props": gfx942_node(128 + 8 * i, 0x0C00 + 0x1000 * i, hex_unique_id=(i == 7)),
             "mem_banks": [vram_bank(206158430208)],
             "io_links": [XGMI_LINK] * 7, "p2p_links": [XGMI_LINK]}
            for i in range(8)]
    write_tree(tmp_path, cpus + gpus, generation=7)
    topo = read(tmp_path)
    assert topo.generation_id == 7 and len(topo) == 10
    assert len(topo.gpus) == 8 and len(topo.cpus) == 2
    for i, g in enumerate(topo.gpus):
        assert g.index == i + 2
        assert g.target_name == "gfx942"
        assert g.num_xcc == 8 and g.cu_count == 304 and g.simd_count == 1216
        assert g.array_count == 32 and g.simd_arrays_per_engine == 1
        assert g.cu_per_simd_array == 10 and g.lds_size_in_kb == 64
        assert g.max_waves_per_simd == 8 and g.wave_front_size == 64
        assert g.drm_render_minor == 128 + 8 * i
        assert g.capability == 746037888 and g.hive_id == 10631624818852212319
        assert len(g.io_links) == 7 and g.io_links[0]["type"] == 11
        assert g.p2p_links[0]["node_to"] == 3
        assert g.local_mem_size == 192 << 30
    # unique_id printed as hex by newer kernels reads to the same number
    assert topo.gpus[7].prop("unique_id") == topo.gpus[0].prop("unique_id") == \
        4376936076086227261
    assert len({g.gpu_id for g in topo.gpus}) == 8


def test_gfx1100(tmp_path):
    write_tree(tmp_path, [{"gpu_id": 0, "props": CPU_NODE},
                          {"gpu_id": 8461, "name": "gfx1100", "props": GFX1100_NODE,
                           "mem_banks": [vram_bank(25753026560)]}])
    (gpu,) = read(tmp_path).gpus
    assert gpu.target_name == "gfx1100" and gpu.target.wave_size == 32
    assert gpu.cu_count == 96 and gpu.wave_front_size == 32 and gpu.simd_per_cu == 2
    assert gpu.array_count == 12 and gpu.simd_arrays_per_engine == 2
    assert gpu.num_sdma_queues_per_engine == 6 and gpu.num_cp_queues == 8
    assert gpu.max_waves_per_simd == 16 and gpu.device_id == 0x744C


@pytest.mark.parametrize("nodes,ctl_stack,cwsr,bo", [
    # facts-kfd.md §5 worked values
    ([{"gpu_id": 1, "props": gfx90a_node()}], 0x9000, 0x400F000, 0x402F000),
    ([{"gpu_id": 1, "props": gfx942_node(128, 0)}], 0x3000, 0x1621000, 0xB167000),
    ([{"gpu_id": 1, "props": GFX1100_NODE}], 0xA000, 0x2BEA000, 0x2C02000),
])
def test_node_values_feed_the_cwsr_sizes(tmp_path, nodes, ctl_stack, cwsr, bo):
    write_tree(tmp_path, nodes)
    (g,) = read(tmp_path).gpus
    s = queue_sizes(g.target, simd_count=g.simd_count, simd_per_cu=g.simd_per_cu,
                    num_xcc=g.num_xcc, array_count=g.array_count,
                    simd_arrays_per_engine=g.simd_arrays_per_engine)
    assert (s.ctl_stack_size, s.cwsr_size, s.ctx_save_bo_size) == (ctl_stack, cwsr, bo)


def test_cpu_only_host_and_optional_parts(tmp_path):
    root = write_tree(tmp_path, [{"gpu_id": 0, "props": CPU_NODE}])
    (root / "system_properties").unlink()
    topo = read(tmp_path)
    assert topo.gpus == [] and topo.system_properties == {}
    assert topo.nodes[0].name == ""                      # no name file
    assert topo.nodes[0].io_links == [] and topo.nodes[0].caches == []


def test_non_numeric_entries_are_ignored(tmp_path):
    root = write_tree(tmp_path, [{"gpu_id": 0, "props": CPU_NODE}])
    (root / "nodes" / "README").mkdir()
    assert len(read(tmp_path).nodes) == 1


# -- malformed trees --------------------------------------------------------------------------

def _tree_with_gpu(tmp_path, props=None, text=None):
    node = {"gpu_id": 45236, "props": props or gfx90a_node()}
    if text is not None:
        node["text"] = text
    return write_tree(tmp_path, [{"gpu_id": 0, "props": CPU_NODE}, node])


def test_garbage_value_names_file_and_line(tmp_path):
    props = gfx90a_node()
    props[1] = ("simd_count", "lots")
    _tree_with_gpu(tmp_path, props)
    with pytest.raises(TopologyError) as info:
        read(tmp_path)
    text = str(info.value)
    assert f"{TOPOLOGY_PATH}/nodes/1/properties" in text and "line 2" in text
    assert "simd_count" in text and "lots" in text


def test_line_without_value(tmp_path):
    _tree_with_gpu(tmp_path, text=props_text(gfx90a_node()) + "dangling\n")
    with pytest.raises(TopologyError, match=r"nodes/1/properties, line 37: 'dangling'"):
        read(tmp_path)


def test_garbage_gpu_id(tmp_path):
    root = _tree_with_gpu(tmp_path)
    (root / "nodes" / "1" / "gpu_id").write_text("0x1234\n")
    with pytest.raises(TopologyError, match=r"nodes/1/gpu_id, line 1: '0x1234'"):
        read(tmp_path)


def test_garbage_generation_id(tmp_path):
    root = _tree_with_gpu(tmp_path)
    (root / "generation_id").write_text("\n")
    with pytest.raises(TopologyError, match="generation_id"):
        read(tmp_path)


@pytest.mark.parametrize("rel", ["generation_id", "nodes/1/gpu_id", "nodes/1/properties"])
def test_missing_mandatory_file(tmp_path, rel):
    root = _tree_with_gpu(tmp_path)
    (root / rel).unlink()
    with pytest.raises(TopologyError) as info:
        read(tmp_path)
    assert f"{TOPOLOGY_PATH}/{rel}" in str(info.value) and "missing" in str(info.value)


def test_missing_nodes_directory(tmp_path):
    root = tmp_path / TOPOLOGY_PATH.lstrip("/")
    root.mkdir(parents=True)
    (root / "generation_id").write_text("1\n")
    with pytest.raises(TopologyError, match=f"{TOPOLOGY_PATH}/nodes.*missing"):
        read(tmp_path)


def test_no_topology_at_all(tmp_path):
    with pytest.raises(TopologyError, match="no KFD topology"):
        read(tmp_path)


def test_entry_without_properties(tmp_path):
    root = _tree_with_gpu(tmp_path)
    (root / "nodes" / "1" / "mem_banks" / "0").mkdir(parents=True)
    with pytest.raises(TopologyError, match=r"nodes/1/mem_banks/0/properties.*missing"):
        read(tmp_path)


def test_gpu_node_without_target_version(tmp_path):
    _tree_with_gpu(tmp_path, [kv for kv in gfx90a_node() if kv[0] != "gfx_target_version"])
    with pytest.raises(TopologyError, match=r"nodes/1/properties.*gfx_target_version"):
        read(tmp_path)


def test_impossible_target_version(tmp_path):
    props = [(k, 90017 if k == "gfx_target_version" else v) for k, v in gfx90a_node()]
    _tree_with_gpu(tmp_path, props)
    with pytest.raises(TopologyError, match=r"nodes/1/properties, line 19"):
        read(tmp_path)


# -- consistency while the tree changes -------------------------------------------------------

class ChangingPort(LinuxPort):
    """Hot-plugs a second GPU the first time node 1's properties are read."""

    def __init__(self, root: pathlib.Path, tree: pathlib.Path, times: int = 1) -> None:
        super().__init__(root=str(root))
        self.tree = tree
        self.times = times
        self.reads = 0

    def _read_sysfs(self, path: str) -> str:
        text = super()._read_sysfs(path)
        if path.endswith("/nodes/1/properties") and self.times > 0:
            self.times -= 1
            n = len(list((self.tree / "nodes").iterdir()))
            d = self.tree / "nodes" / str(n)
            d.mkdir()
            (d / "gpu_id").write_text(f"{50000 + n}\n")
            (d / "properties").write_text(props_text(GFX1100_NODE))
            gen = int((self.tree / "generation_id").read_text())
            (self.tree / "generation_id").write_text(f"{gen + 1}\n")
        if path.endswith("/generation_id"):
            self.reads += 1
        return text


def test_generation_change_causes_a_reread(tmp_path):
    tree = _tree_with_gpu(tmp_path)
    port = ChangingPort(tmp_path, tree)
    topo = read_topology(port)
    assert topo.generation_id == 2
    assert [g.target_name for g in topo.gpus] == ["gfx90a", "gfx1100"]
    assert port.reads > 2   # read, changed, read again


def test_a_tree_that_never_settles_is_an_error(tmp_path):
    tree = _tree_with_gpu(tmp_path)
    with pytest.raises(TopologyError, match="kept changing"):
        read_topology(ChangingPort(tmp_path, tree, times=100), max_retries=3)


class DeniedPort(LinuxPort):
    """A device cgroup that hides node 1 (kfd_topology.c answers EPERM)."""

    def _read_sysfs(self, path: str) -> str:
        if "/nodes/1/" in path:
            raise PermissionError(1, "Operation not permitted", path)
        return super()._read_sysfs(path)


def test_inaccessible_gpu_is_skipped_with_the_reason(tmp_path):
    write_tree(tmp_path, [{"gpu_id": 0, "props": CPU_NODE},
                          {"gpu_id": 1, "props": gfx90a_node()},
                          {"gpu_id": 2, "props": GFX1100_NODE}])
    topo = read_topology(DeniedPort(root=str(tmp_path)))
    assert [g.gpu_id for g in topo.gpus] == [2]
    ((index, reason),) = topo.inaccessible
    assert index == 1 and "permission denied" in reason and "nodes/1/" in reason


def test_target_missing_from_the_table_still_has_a_name(tmp_path):
    # gfx1030 (RX 6800/6900): gfx_target_version 100300 = 10*10000 + 3*100 + 0
    props = [(k, 100300 if k == "gfx_target_version" else v) for k, v in GFX1100_NODE]
    write_tree(tmp_path, [{"gpu_id": 77, "props": props}])
    (g,) = read(tmp_path).gpus
    assert g.target_name == "gfx1030" and g.target is None
