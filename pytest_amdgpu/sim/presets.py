"""Topology presets: the sysfs properties a real KFD shows for gfx90a, gfx942 and gfx1100.

Values come from ../shared/reference/facts-kfd.md §6 (each cited below by the sheet's short
source names: M300, TG, RI-250X, RI-250, RI-300X, RVS, TOPO). Where the sheet marks a value NOT
SOURCED it is used anyway and marked so here; values this file adds beyond the sheet (caches,
memory-bank width/clock, io-link numbers) are marked DERIVED or NOT SOURCED with the reasoning.

The node `properties` key order is the kernel's (amdkfd/kfd_topology.c `node_show`, KFD 1.17
era, as in the TG and M300 dumps): CPU and GPU keys, then GPU-only keys from
`max_engine_clk_fcompute` to `num_xcc`, then `max_engine_clk_ccompute` for every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Keys every node prints, in node_show order (TOPO).
COMMON_KEYS = (
    "cpu_cores_count", "simd_count", "mem_banks_count", "caches_count", "io_links_count",
    "p2p_links_count", "cpu_core_id_base", "simd_id_base", "max_waves_per_simd",
    "lds_size_in_kb", "gds_size_in_kb", "num_gws", "wave_front_size", "array_count",
    "simd_arrays_per_engine", "cu_per_simd_array", "simd_per_cu", "max_slots_scratch_cu",
    "gfx_target_version", "vendor_id", "device_id", "location_id", "domain", "drm_render_minor",
    "hive_id", "num_sdma_engines", "num_sdma_xgmi_engines", "num_sdma_queues_per_engine",
    "num_cp_queues",
)
# Printed for GPU nodes only, after the common keys (TOPO; debug_prop patch 42402302131,
# num_xcc patch 8483225690; order as in the TG dump). capability2 (newest kernels) is left out:
# the simulated driver is a 1.17-era kernel.
GPU_KEYS = (
    "max_engine_clk_fcompute", "local_mem_size", "fw_version", "capability", "debug_prop",
    "sdma_fw_version", "unique_id", "num_xcc",
)
LAST_KEY = "max_engine_clk_ccompute"

# Host CPU clock printed as max_engine_clk_ccompute (cpufreq of the host): the M300 and TG dumps
# show 2400; the simulator has no cpufreq, so it uses that value.
HOST_CPU_MHZ = 2400

# io_links / p2p_links `type` values (kfd_sysfs.h / facts §6.1 "Other files").
IOLINK_TYPE_PCIEXPRESS = 2
IOLINK_TYPE_XGMI = 11
# mem_banks heap_type (facts §6.1).
HEAP_TYPE_SYSTEM = 0
HEAP_TYPE_FB_PUBLIC = 1
# caches `type` bits (facts §6.1): 1 DATA, 2 INSTRUCTION, 4 CPU, 8 HSACU.
CACHE_DATA = 1
CACHE_INSTRUCTION = 2
CACHE_HSACU = 8


@dataclass(frozen=True)
class CacheLevel:
    """One kind of GPU cache: one instance per `cus_shared` CUs (kfd_crat.c cache tables)."""

    level: int
    size_kib: int
    line_size: int
    type: int
    cus_shared: int          # CUs sharing one instance; 0 = one per XCC; -1 = one per node
    association: int = 0     # DERIVED: KFD prints 0 for GPU caches without CRAT data
    latency: int = 0


@dataclass(frozen=True)
class GPUPreset:
    """Everything the simulated topology needs to describe one GPU model."""

    target: str
    name: str                       # nodes/N/name
    properties: dict[str, int]      # the GPU's own values (counts, ids, render minor added later)
    vram_size: int                  # mem_banks/0 size_in_bytes
    vram_width: int                 # mem_banks/0 width (bits)
    vram_clk_mhz: int               # mem_banks/0 mem_clk_max
    pci_bus: int                    # first device's PCI bus (location_id = bus << 8 | devfn)
    caches: tuple[CacheLevel, ...] = field(default_factory=tuple)
    xgmi_hive: int = 0              # hive_id when several such GPUs are in one machine
    xgmi_bandwidth_mbs: int = 0     # io_link min/max bandwidth for XGMI links (NOT SOURCED)
    pcie_bandwidth_mbs: int = 0     # io_link bandwidth to the CPU (NOT SOURCED)

    @property
    def cu_count(self) -> int:
        return self.properties["simd_count"] // self.properties["simd_per_cu"]


def _props(**kw: int) -> dict[str, int]:
    return dict(kw)


# -- gfx90a: MI250X, one GCD ------------------------------------------------------------------
GFX90A = GPUPreset(
    target="gfx90a",
    name="aldebaran",  # DERIVED (lower-cased amdgpu asic name) — unverified, facts §6.3
    properties=_props(
        simd_count=440,              # RI-250X: 110 CU x 4 SIMD (also fixture 70172040250)
        simd_id_base=2147487744,     # NOT SOURCED: 0x80001000, same style as the M300 dump
        max_waves_per_simd=8,        # RI-250: Max Waves Per CU 32 / 4
        lds_size_in_kb=64,           # derived: every gfx9 dump; OpenCL local memory 65536
        gds_size_in_kb=0,            # derived (as the gfx942 dump); unverified
        num_gws=64,                  # derived (gfx9 value in M300); unverified
        wave_front_size=64,          # RI-250
        array_count=8,               # RI-250X: 8 SE x 1 SA
        simd_arrays_per_engine=1,    # RI-250X
        cu_per_simd_array=14,        # NOT SOURCED: 112 CU slots / 8 arrays
        simd_per_cu=4,               # RI-250X
        max_slots_scratch_cu=32,     # derived (every dump)
        gfx_target_version=90010,    # fixture 70172040250
        vendor_id=4098,              # PCI vendor 0x1002
        device_id=29704,             # RI-250X: Chip ID 0x7408 (MI250X)
        domain=0,
        num_sdma_engines=2,          # NOT SOURCED (recollection of amdgpu, facts §6.3)
        num_sdma_xgmi_engines=3,     # NOT SOURCED
        num_sdma_queues_per_engine=8,  # NOT SOURCED
        num_cp_queues=24,            # NOT SOURCED: assumed equal to the gfx942 dump
        max_engine_clk_fcompute=1700,  # RI-250X / RI-250
        local_mem_size=0,            # TOPO: always printed as 0
        fw_version=78,               # RI-250: Packet Processor uCode 78
        capability=746037888,        # NOT SOURCED: the gfx9 pattern of §6.2 (MI300X value)
        debug_prop=1511,             # NOT SOURCED: MI300X value (same debug feature set)
        sdma_fw_version=8,           # RI-250: SDMA engine uCode 8
        unique_id=7140421325473856571,  # NOT SOURCED: any 64-bit value; varied per device
        num_xcc=1,                   # derived: one XCC per GCD
    ),
    vram_size=68702699520,           # RI-250: pool 67092480 KB x 1024
    vram_width=4096,                 # NOT SOURCED: 4 HBM2e stacks x 1024 bit per GCD
    vram_clk_mhz=1600,               # NOT SOURCED: HBM2e 3.2 Gbps
    pci_bus=0x32,                    # RI-250X: BDFID 50688 = 0xC600 -> bus 0xC6; we start at 0x32
    caches=(
        CacheLevel(1, 16, 64, CACHE_DATA | CACHE_HSACU, 1),           # TCP L1 16 KB (RI-250)
        CacheLevel(1, 64, 64, CACHE_INSTRUCTION | CACHE_HSACU, 2),    # SQC I$: NOT SOURCED
        CacheLevel(1, 16, 64, CACHE_DATA | CACHE_HSACU, 2),           # SQC K$: NOT SOURCED
        CacheLevel(2, 8192, 128, CACHE_DATA | CACHE_HSACU, 0),        # L2 8 MB (RI-250)
    ),
    xgmi_hive=12738312961873432319,  # NOT SOURCED: GCDs are XGMI-linked, value unknown
    xgmi_bandwidth_mbs=50000,        # NOT SOURCED
    pcie_bandwidth_mbs=32000,        # NOT SOURCED (PCIe 4.0 x16)
)

# -- gfx942: MI300X, SPX (one node = 8 XCC) ---------------------------------------------------
GFX942 = GPUPreset(
    target="gfx942",
    name="ip discovery",             # test fixture 70369623012
    properties=_props(
        simd_count=1216,             # M300: 304 CU x 4, whole node as sysfs shows
        simd_id_base=2147487784,     # M300
        max_waves_per_simd=8,        # M300
        lds_size_in_kb=64,           # M300
        gds_size_in_kb=0,            # M300
        num_gws=64,                  # M300
        wave_front_size=64,          # M300
        array_count=32,              # M300 (4 SE per XCC x 8 XCC)
        simd_arrays_per_engine=1,    # M300
        cu_per_simd_array=10,        # M300
        simd_per_cu=4,               # M300
        max_slots_scratch_cu=32,     # M300
        gfx_target_version=90402,    # M300
        vendor_id=4098,              # M300
        device_id=29857,             # M300 / RI-300X: 0x74a1
        domain=0,                    # M300
        num_sdma_engines=2,          # M300
        num_sdma_xgmi_engines=14,    # M300
        num_sdma_queues_per_engine=8,  # M300
        num_cp_queues=24,            # M300
        max_engine_clk_fcompute=2100,  # M300 / RI-300X
        local_mem_size=0,            # M300 / TOPO
        fw_version=166,              # M300
        capability=746037888,        # M300 (0x2C77A280; newer kernels add PER_QUEUE_RESET)
        debug_prop=1511,             # M300
        sdma_fw_version=22,          # M300
        unique_id=4376936076086227261,  # M300
        num_xcc=8,                   # M300 / RVS
    ),
    vram_size=206158430208,          # NOT SOURCED: 192 GiB HBM3 (product specification)
    vram_width=8192,                 # NOT SOURCED: 8 HBM3 stacks x 1024 bit (MI350 PR shows 8192)
    vram_clk_mhz=1300,               # NOT SOURCED: HBM3 5.2 Gbps
    pci_bus=0x47,                    # M300: location_id 18176 = 0x4700
    caches=(
        CacheLevel(1, 32, 64, CACHE_DATA | CACHE_HSACU, 1),           # TCP L1 32 KB (RI-300X)
        CacheLevel(1, 64, 64, CACHE_INSTRUCTION | CACHE_HSACU, 2),    # SQC I$: NOT SOURCED
        CacheLevel(1, 16, 64, CACHE_DATA | CACHE_HSACU, 2),           # SQC K$: NOT SOURCED
        CacheLevel(2, 4096, 128, CACHE_DATA | CACHE_HSACU, 0),        # L2 4 MB per XCC (RI-300X)
        CacheLevel(3, 262144, 64, CACHE_DATA | CACHE_HSACU, -1),      # MALL 256 MB (RI-300X)
    ),
    xgmi_hive=10631624818852212319,  # M300
    xgmi_bandwidth_mbs=64000,        # NOT SOURCED
    pcie_bandwidth_mbs=64000,        # NOT SOURCED (PCIe 5.0 x16)
)

# -- gfx1100: RX 7900 XTX ---------------------------------------------------------------------
GFX1100 = GPUPreset(
    target="gfx1100",
    name="ip discovery",             # DERIVED: Navi31 is an IP-discovery ASIC, as gfx942
    properties=_props(
        simd_count=192,              # TG: 96 CU x 2
        simd_id_base=2147488032,     # TG
        max_waves_per_simd=16,       # TG
        lds_size_in_kb=64,           # TG
        gds_size_in_kb=0,            # TG
        num_gws=64,                  # TG
        wave_front_size=32,          # TG
        array_count=12,              # TG (6 SE x 2 SA)
        simd_arrays_per_engine=2,    # TG
        cu_per_simd_array=8,         # TG
        simd_per_cu=2,               # TG
        max_slots_scratch_cu=32,     # TG
        gfx_target_version=110000,   # TG
        vendor_id=4098,              # TG
        device_id=29772,             # TG: 0x744C
        domain=0,                    # TG
        num_sdma_engines=2,          # TG
        num_sdma_xgmi_engines=0,     # TG
        num_sdma_queues_per_engine=6,  # TG
        num_cp_queues=8,             # TG
        max_engine_clk_fcompute=2482,  # TG
        local_mem_size=0,            # TG / TOPO
        fw_version=2140,             # TG
        capability=671588992,        # TG (0x2807A280)
        debug_prop=1495,             # TG
        sdma_fw_version=20,          # TG
        unique_id=11673270660693242239,  # TG
        num_xcc=1,                   # TG
    ),
    vram_size=25753026560,           # NOT SOURCED: 24 GiB card less firmware reserve (recollection)
    vram_width=384,                  # NOT SOURCED: 384-bit GDDR6 (product specification)
    vram_clk_mhz=1250,               # NOT SOURCED: 20 Gbps GDDR6
    pci_bus=0x86,                    # TG: location_id 34304 = 0x8600
    caches=(
        # DERIVED: with these sharing factors the count is 96 + 48 + 48 + 12 + 1 + 1 = 206, the
        # caches_count of the TG dump. Sizes: NOT SOURCED (RDNA3 public specifications).
        CacheLevel(1, 32, 128, CACHE_DATA | CACHE_HSACU, 1),          # vector L0 per CU
        CacheLevel(1, 32, 64, CACHE_INSTRUCTION | CACHE_HSACU, 2),    # I$ per WGP
        CacheLevel(1, 16, 64, CACHE_DATA | CACHE_HSACU, 2),           # K$ per WGP
        CacheLevel(2, 256, 128, CACHE_DATA | CACHE_HSACU, 8),         # GL1 per shader array
        CacheLevel(3, 6144, 128, CACHE_DATA | CACHE_HSACU, -1),       # L2 6 MB
        CacheLevel(4, 98304, 64, CACHE_DATA | CACHE_HSACU, -1),       # MALL 96 MB
    ),
    xgmi_hive=0,                     # TG: hive_id 0
    pcie_bandwidth_mbs=32000,        # NOT SOURCED (PCIe 4.0 x16)
)

PRESETS: dict[str, GPUPreset] = {p.target: p for p in (GFX90A, GFX942, GFX1100)}


def get_preset(target: str) -> GPUPreset:
    """The preset of a target; KeyError names the known ones."""
    try:
        return PRESETS[target]
    except KeyError:
        raise KeyError(f"no topology preset for {target!r}; known: "
                       f"{', '.join(sorted(PRESETS))}") from None


def format_properties(items: list[tuple[str, int]]) -> str:
    """`"<key> <decimal>\\n"` lines as sysfs_show_32bit_prop/64bit_prop print them (TOPO)."""
    return "".join(f"{k} {int(v)}\n" for k, v in items)


def gpu_cache_entries(preset: GPUPreset, simd_id_base: int) -> list[list[tuple[str, object]]]:
    """caches/<i>/properties of one GPU node, in kfd_cache_show key order (TOPO).

    One entry per cache instance. `processor_id_low` is the node's simd_id_base plus the index
    of the first CU the instance serves; `sibling_map` has one 0/1 per CU of the node (rounded
    up to whole 32-bit words, as the kernel prints each word's 32 bits) — DERIVED layout.
    """
    props = preset.properties
    cus = preset.cu_count
    xcc = props["num_xcc"]
    words = (cus + 31) // 32
    entries: list[list[tuple[str, object]]] = []
    for c in preset.caches:
        if c.cus_shared == -1:
            span = cus
        elif c.cus_shared == 0:
            span = cus // xcc
        else:
            span = c.cus_shared
        for first in range(0, cus, span):
            bits = ["1" if first <= i < first + span else "0" for i in range(words * 32)]
            entries.append([
                ("processor_id_low", simd_id_base + first),
                ("level", c.level),
                ("size", c.size_kib),
                ("cache_line_size", c.line_size),
                ("cache_lines_per_tag", 1),     # NOT SOURCED
                ("association", c.association),
                ("latency", c.latency),
                ("type", c.type),
                ("sibling_map", ",".join(bits)),
            ])
    return entries


def format_cache(entry: list[tuple[str, object]]) -> str:
    """kfd_cache_show text: numeric lines, then `sibling_map 1,0,...` (TOPO)."""
    return "".join(f"{k} {v}\n" for k, v in entry)
