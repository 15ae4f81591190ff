"""``python -m pytest_amdgpu``: info (the GPUs here), decode (ring/packet dumps), report
(merge conformance reports).

Each command lives in ``pytest_amdgpu.cli.<command>`` with ``main(argv) -> int``; a command
whose module is not installed says so and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "info": "list the GPUs of this machine, or of a simulated one (--sim SPEC)",
    "decode": "decode a PM4 / SDMA / AQL packet dump (--pm4|--sdma|--aql FILE --target T)",
    "report": "merge --amdgpu-report JSON files into Markdown and HTML matrices",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_amdgpu",
        description="pytest_amdgpu: hardware-in-the-loop testing of AMD GPUs through /dev/kfd.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = _parser()
        if argv and argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        parser.print_usage(sys.stderr)
        problem = f"unknown command {argv[0]!r}" if argv else "a command is required"
        print(f"{parser.prog}: error: {problem} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    module_name = f"pytest_amdgpu.cli.{command}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"python -m pytest_amdgpu {command}: this command is not available in this "
              f"installation ({module_name} is missing)", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
