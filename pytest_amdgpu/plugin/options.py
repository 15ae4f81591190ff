"""The plugin's options: each a command-line option, an ini key and an environment variable.

Precedence is command line > environment > ini file > default. Every value is checked once,
when pytest configures, and a bad one is a ``pytest.UsageError`` that names the option, where
the value came from, and the accepted values. Only the standard library is imported here.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

GROUP = "amdgpu"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class OptionSpec:
    """One setting: its flag, ini key, environment variable, default and parser."""

    name: str                     # attribute of AmdgpuOptions
    flag: str                     # --amdgpu-…
    help: str
    default: object
    parse: Callable[[str, str], object]   # (raw text, where) -> value; raises UsageError
    is_flag: bool = False         # a store_true command-line switch
    metavar: str | None = None

    @property
    def ini(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return "PYTEST_" + self.flag.lstrip("-").replace("-", "_").upper()

    @property
    def dest(self) -> str:
        return self.ini


def _usage(where: str, problem: str, accepted: str) -> pytest.UsageError:
    return pytest.UsageError(f"{where}: {problem}; accepted values: {accepted}")


def parse_bool(raw: str, where: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _usage(where, f"{raw!r} is not a boolean", "1/true/yes/on or 0/false/no/off")


def parse_backend(raw: str, where: str) -> str:
    """A backend name; checked against the registry later, once plugins have registered."""
    text = raw.strip()
    if not text or not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise _usage(where, f"{raw!r} is not a backend name",
                     "auto, kfd, sim or a backend a plugin registered")
    return text


def parse_seconds(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _usage(where, f"{raw!r} is not a number of seconds", "a number > 0") from None
    if not value > 0 or value != value or value == float("inf"):
        raise _usage(where, f"{raw!r} is not a positive, finite number of seconds",
                     "a number > 0")
    return value


def parse_lock_timeout(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _usage(where, f"{raw!r} is not a number of seconds",
                     "a number >= 0 (0: do not wait for a locked device)") from None
    if value < 0 or value != value:
        raise _usage(where, f"{raw!r} is negative", "a number >= 0 (0: do not wait)")
    return value


def parse_path(raw: str, where: str) -> str:
    return os.path.expanduser(raw.strip())


# A simulated machine: comma-separated targets, each optionally ``xN`` (N devices).
_SIM_ITEM = re.compile(r"(?P<target>gfx[0-9a-f]+)(?:x(?P<count>[0-9]+))?")


def parse_sim_spec(raw: str, where: str) -> tuple[str, ...]:
    """Expand ``gfx90a,gfx942x2`` into ``("gfx90a", "gfx942", "gfx942")``; targets are checked."""
    from ..targets import TARGETS

    known = ", ".join(sorted(TARGETS))
    accepted = (f"comma-separated targets from {known}, each optionally followed by xN for N "
                "devices (e.g. gfx942x2,gfx1100)")
    out: list[str] = []
    items = [t.strip() for t in raw.split(",")]
    if not any(items):
        raise _usage(where, f"{raw!r} names no simulated device", accepted)
    for item in items:
        if not item:
            raise _usage(where, f"{raw!r} has an empty entry", accepted)
        m = _SIM_ITEM.fullmatch(item.lower())
        if m is None:
            raise _usage(where, f"{item!r} is not a target name", accepted)
        target = m.group("target")
        if target not in TARGETS:
            raise _usage(where, f"unknown target {target!r}", accepted)
        count = int(m.group("count") or 1)
        if not 1 <= count <= 64:
            raise _usage(where, f"{item!r}: the device count must be 1..64", accepted)
        out.extend([target] * count)
    return tuple(out)


def parse_device_list(raw: str, where: str) -> tuple[str, ...]:
    """``0,2`` / ``gfx942`` / ``gfx9*`` / ``0x1a2b`` / ``gpu_id:6789``: kept as text, matched later."""
    items = tuple(t.strip() for t in raw.split(",") if t.strip())
    for item in items:
        if not re.fullmatch(r"[A-Za-z0-9_*?\[\]:.-]+", item):
            raise _usage(where, f"{item!r} is not a device selector",
                         "comma-separated device indices, gpu_ids (gpu_id:N or 0xHEX), or "
                         "target names / patterns (gfx942, gfx9*)")
    return items


def _default_lock_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "pytest-amdgpu-locks")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("backend", "--amdgpu-backend",
               "where tests run: auto (the GPU when /dev/kfd is usable, else the simulator), kfd "
               "(the real GPU), sim (the simulated GPU) or a backend a plugin registered. "
               "Default: auto.", "auto", parse_backend, metavar="NAME"),
    OptionSpec("require_hw", "--amdgpu-require-hw",
               "fail the run instead of falling back to the simulator when no GPU is usable.",
               False, parse_bool, is_flag=True),
    OptionSpec("sim", "--amdgpu-sim",
               "the simulated devices: comma-separated targets, each optionally xN, e.g. "
               "gfx90a,gfx942,gfx1100 or gfx942x2. Default: gfx942.", ("gfx942",),
               parse_sim_spec, metavar="SPEC"),
    OptionSpec("devices", "--amdgpu-devices",
               "use only these devices: comma-separated indices, gpu_ids (gpu_id:N or 0xHEX) "
               "or target patterns (gfx942, gfx9*). Default: all.", (), parse_device_list,
               metavar="LIST"),
    OptionSpec("timeout", "--amdgpu-timeout",
               "default deadline in seconds of runtime waits (signals, queues, events) in "
               "tests. Default: 30.", 30.0, parse_seconds, metavar="SECONDS"),
    OptionSpec("artifacts", "--amdgpu-artifacts",
               "write the ioctl trace, decoded rings and fault events of each failed test "
               "under DIR/<test id>/. Default: off.", "", parse_path, metavar="DIR"),
    OptionSpec("lock_dir", "--amdgpu-lock-dir",
               "directory of the per-GPU lock files that keep two runs on one host off the "
               "same GPU. Default: <tmp>/pytest-amdgpu-locks.", None, parse_path,
               metavar="DIR"),
    OptionSpec("lock_timeout", "--amdgpu-lock-timeout",
               "seconds to wait for a GPU another run holds before skipping its tests "
               "(0: skip at once). Default: 300.", 300.0, parse_lock_timeout,
               metavar="SECONDS"),
    OptionSpec("report", "--amdgpu-report",
               "write a JSON report (each test's outcome, area, target, backend; run "
               "metadata) to PATH.", "", parse_path, metavar="PATH"),
    OptionSpec("known_failures", "--amdgpu-known-failures",
               "a known-failure list (TOML or text: test pattern, target pattern, reason); "
               "matching tests are marked xfail(strict=False).", "", parse_path,
               metavar="PATH"),
)

BY_NAME = {o.name: o for o in OPTIONS}


@dataclass
class AmdgpuOptions:
    """The resolved settings of one run, and where each came from."""

    backend: str = "auto"
    require_hw: bool = False
    sim: tuple[str, ...] = ("gfx942",)
    devices: tuple[str, ...] = ()
    timeout: float = 30.0
    artifacts: str = ""
    lock_dir: str = field(default_factory=_default_lock_dir)
    lock_timeout: float = 300.0
    report: str = ""
    known_failures: str = ""
    sources: dict[str, str] = field(default_factory=dict)   # name -> "--flag" / env / ini / default

    def describe(self, name: str) -> str:
        return self.sources.get(name, "default")

    def origin(self, name: str) -> str:
        """`` (from …)`` for a value that did not come from the command line, else empty."""
        where = self.sources.get(name, "default")
        return "" if where.startswith("--") else f" (from {where})"


def add_options(parser: pytest.Parser) -> None:
    """Register the ``amdgpu`` option group and the ini keys."""
    group = parser.getgroup(GROUP, "AMD GPU testing through /dev/kfd or the simulator "
                                   "(each option also PYTEST_AMDGPU_* and amdgpu_* ini)")
    for opt in OPTIONS:
        text = f"{opt.help} [env {opt.env}, ini {opt.ini}]"
        if opt.is_flag:
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=text)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.dest,
                            metavar=opt.metavar, help=text)
        parser.addini(opt.ini, f"{opt.help} (overridden by {opt.env} and {opt.flag})",
                      default="")


def _relative_to_ini(config: pytest.Config, value: str) -> str:
    if not value or os.path.isabs(value):
        return value
    base = config.inipath.parent if config.inipath else config.rootpath
    return str(base / value)


def resolve_options(config: pytest.Config, environ: dict[str, str] | None = None
                    ) -> AmdgpuOptions:
    """Read every setting with its precedence and check it; raises ``pytest.UsageError``."""
    env = os.environ if environ is None else environ
    out = AmdgpuOptions()
    for opt in OPTIONS:
        cli = config.getoption(opt.dest, default=None)
        if cli is not None and cli is not False:
            where = opt.flag
            value = True if opt.is_flag else opt.parse(str(cli), f"{opt.flag}={cli}")
        elif env.get(opt.env, "") != "":
            raw = env[opt.env]
            where = f"environment variable {opt.env}"
            value = opt.parse(raw, f"{opt.flag} (from {opt.env}={raw!r})")
        elif str(config.getini(opt.ini) or "").strip() != "":
            raw = str(config.getini(opt.ini)).strip()
            where = f"ini option {opt.ini}"
            value = opt.parse(raw, f"{opt.flag} (from ini {opt.ini} = {raw!r})")
            if opt.parse is parse_path:
                value = _relative_to_ini(config, value)
        else:
            where = "default"
            value = opt.default if opt.default is not None else _default_lock_dir()
        setattr(out, opt.name, value)
        out.sources[opt.name] = where
    return out
