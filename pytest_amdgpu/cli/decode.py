"""``python -m pytest_amdgpu decode``: render a PM4, SDMA or AQL packet dump as text.

    python -m pytest_amdgpu decode --pm4 ring.bin --target gfx942
    python -m pytest_amdgpu decode --sdma - --target gfx1100 < sdma_ring.bin
    python -m pytest_amdgpu decode --aql queue.bin --start 128 --mark 130
    python -m pytest_amdgpu decode --pm4 dwords.txt --hex --target gfx90a

FILE holds little-endian binary dwords (``-`` reads stdin); with ``--hex`` it is text: hex
dwords separated by spaces, commas or newlines (``0x`` optional, ``#`` starts a comment).
Exit status: 0 when every packet decoded, 1 when some did not (shown as ``???`` lines),
2 for a usage or input error.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys

from ..errors import PacketError

__all__ = ["add_arguments", "main", "parse_hex_dwords", "render"]

_HEX_TOKEN = re.compile(r"^(?:0x)?([0-9a-fA-F]{1,8})$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--pm4", metavar="FILE", help="PM4 ring or IB dump (dwords)")
    kind.add_argument("--sdma", metavar="FILE", help="SDMA ring dump (dwords; byte offsets)")
    kind.add_argument("--aql", metavar="FILE", help="AQL queue dump (64-byte packets)")
    parser.add_argument("--target", metavar="GFX",
                        help="GPU target (gfx90a, gfx942, gfx1100): selects the per-family "
                             "packet forms; required for --sdma")
    parser.add_argument("--hex", action="store_true",
                        help="FILE is text: hex dwords separated by whitespace or commas")
    parser.add_argument("--start", type=lambda s: int(s, 0), default=0, metavar="OFFSET",
                        help="ring offset of the first dword (PM4), byte (SDMA) or packet "
                             "index (AQL) in FILE, for the labels")
    parser.add_argument("--mark", type=lambda s: int(s, 0), default=None, metavar="OFFSET",
                        help="offset to flag with '=>' (e.g. the read pointer), same units")
    parser.add_argument("--raw", type=int, default=4, metavar="N",
                        help="raw dwords shown per line (default 4)")


def parse_hex_dwords(text: str) -> list[int]:
    """Dwords from text: hex numbers separated by whitespace/commas, ``#`` comments."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for tok in re.split(r"[\s,]+", line.strip()):
            if not tok:
                continue
            m = _HEX_TOKEN.match(tok)
            if m is None:
                raise ValueError(f"line {lineno}: {tok!r} is not a hex dword")
            out.append(int(m.group(1), 16))
    return out


def _read(path: str, hex_text: bool) -> bytes:
    if path == "-":
        raw = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            raw = f.read()
    if hex_text:
        words = parse_hex_dwords(raw.decode("utf-8", errors="replace"))
        return struct.pack(f"<{len(words)}I", *words)
    return raw


def render(kind: str, data: bytes, target: str | None, start: int = 0, mark: int | None = None,
           raw_limit: int = 4) -> str:
    """The ring-dump text for ``data`` (kind: "pm4", "sdma" or "aql")."""
    from ..packets import aql, pm4, sdma

    if kind == "aql":
        whole = len(data) - len(data) % aql.PACKET_BYTES
        text = aql.format_stream(data[:whole], target, start, mark, raw_limit=raw_limit)
        if whole != len(data):
            text += f"\n(ignored {len(data) - whole} trailing bytes: not a whole 64-byte packet)"
        return text
    whole = len(data) - len(data) % 4
    if kind == "pm4":
        text = pm4.format_stream(data[:whole], target, start, mark, raw_limit=raw_limit)
    else:
        text = sdma.format_stream(data[:whole], target, start, mark, raw_limit=raw_limit)
    if whole != len(data):
        text += f"\n(ignored {len(data) - whole} trailing bytes: not a whole dword)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_amdgpu decode",
        description="Decode a PM4 / SDMA / AQL packet dump into a readable ring dump.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    kind = "pm4" if args.pm4 is not None else "sdma" if args.sdma is not None else "aql"
    path = args.pm4 or args.sdma or args.aql
    if kind == "sdma" and not args.target:
        print("decode: --sdma needs --target (the SDMA version and count widths differ by GPU)",
              file=sys.stderr)
        return 2
    try:
        data = _read(path, args.hex)
    except OSError as e:
        print(f"decode: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"decode: {path}: {e}", file=sys.stderr)
        return 2
    if not data:
        print(f"decode: {path} is empty", file=sys.stderr)
        return 2
    try:
        text = render(kind, data, args.target, args.start, args.mark, args.raw)
    except PacketError as e:
        print(f"decode: {e}", file=sys.stderr)
        return 2
    print(text)
    return 1 if any(" ??? " in line for line in text.splitlines()) else 0


if __name__ == "__main__":
    sys.exit(main())
