"""``python -m pytest_amdgpu report FILE…``: merge ``--amdgpu-report`` JSON files (from several
machines or runs) into one area x target matrix, as Markdown and as a standalone HTML page.

Each column is a target; when the files come from several backends or hosts the column also
names them (``gfx942 · kfd@lab3``). A cell is passed/failed/skipped (failed counts errors;
known failures that failed show as ``xN``). When two files report the same test for the same
column, the later file wins. Without ``--markdown`` the Markdown goes to stdout.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass, field

from ..plugin.report import NO_TARGET, SCHEMA, cell_bucket, format_cell, target_sort_key

__all__ = ["Merged", "add_arguments", "load_report", "main", "merge", "render_html",
           "render_markdown"]


class ReportError(Exception):
    """A file is not an --amdgpu-report JSON file."""


@dataclass
class Merged:
    """The merged view: runs, columns, per (column, nodeid) results."""

    runs: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    tests: dict[tuple[str, str], dict] = field(default_factory=dict)

    def matrix(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (column, _nodeid), t in self.tests.items():
            cell = out.setdefault(t.get("area") or "-", {}).setdefault(
                column, {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
            cell[cell_bucket(t.get("outcome", "skipped"))] += 1
        return out

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for row in self.matrix().values():
            for col, cell in row.items():
                t = out.setdefault(col, {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
                for k in t:
                    t[k] += cell[k]
        return out

    def failures(self) -> list[tuple[str, dict]]:
        return [(col, t) for (col, _), t in self.tests.items()
                if t.get("outcome") in ("failed", "error")]


def load_report(path: str) -> dict:
    """Read and check one report file; raises ReportError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ReportError(f"{path}: not a pytest-amdgpu report (schema {found!r}, expected "
                          f"{SCHEMA!r}); write one with pytest --amdgpu-report=PATH")
    if not isinstance(data.get("tests"), list) or not isinstance(data.get("run"), dict):
        raise ReportError(f"{path}: the report lacks its 'run' object or 'tests' list")
    for i, t in enumerate(data["tests"]):
        if not isinstance(t, dict) or "nodeid" not in t or "outcome" not in t:
            raise ReportError(f"{path}: tests[{i}] lacks 'nodeid' or 'outcome'")
    return data


def merge(reports: list[tuple[str, dict]]) -> Merged:
    """Merge loaded reports (path, data) into columns and per-test results."""
    backends = {r["run"].get("backend") for _, r in reports}
    hosts = {r["run"].get("host") for _, r in reports}

    def column(run: dict, test: dict) -> str:
        name = test.get("target") or NO_TARGET
        parts = []
        if len(backends) > 1:
            parts.append(str(test.get("backend") or run.get("backend") or "?"))
        if len(hosts) > 1:
            host = str(run.get("host") or "?")
            parts[-1:] = [f"{parts[-1]}@{host}"] if parts else [host]
        return f"{name} · {' '.join(parts)}" if parts else name

    merged = Merged()
    seen: dict[str, str] = {}                      # column label -> target
    for path, data in reports:
        run = data["run"]
        counts = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}
        for test in data["tests"]:
            col = column(run, test)
            seen.setdefault(col, test.get("target") or NO_TARGET)
            merged.tests[(col, test["nodeid"])] = test
            counts[cell_bucket(test.get("outcome", "skipped"))] += 1
        merged.runs.append({"file": path, "host": run.get("host"), "backend": run.get("backend"),
                            "kfd": run.get("kfd_version"), "targets": run.get("targets") or [],
                            "started": run.get("started"), "tests": len(data["tests"]),
                            "partial": bool(run.get("partial")), **counts})
    merged.columns = sorted(seen, key=lambda c: (*target_sort_key(seen[c]), c))
    return merged


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(m: Merged) -> str:
    lines = ["# pytest-amdgpu report", ""]
    lines += ["| file | host | backend | KFD | targets | tests | passed | failed | skipped |",
              "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in m.runs:
        partial = " (partial)" if r["partial"] else ""
        lines.append(f"| {_md_escape(r['file'])}{partial} | {_md_escape(r['host'] or '?')} | "
                     f"{r['backend'] or '?'} | {r['kfd'] or '?'} | {', '.join(r['targets'])} | "
                     f"{r['tests']} | {r['passed']} | {r['failed']} | {r['skipped']} |")
    lines += ["", "## Area x target (passed/failed/skipped; xN: known failures)", ""]
    matrix = m.matrix()
    lines.append("| area | " + " | ".join(_md_escape(c) for c in m.columns) + " |")
    lines.append("|---|" + "---:|" * len(m.columns))
    for area in sorted(matrix):
        cells = [format_cell(matrix[area].get(c)) for c in m.columns]
        lines.append(f"| {_md_escape(area)} | " + " | ".join(cells) + " |")
    totals = m.totals()
    lines.append("| **total** | " + " | ".join(f"**{format_cell(totals.get(c))}**"
                                               for c in m.columns) + " |")
    failures = m.failures()
    lines += ["", f"## Failures ({len(failures)})", ""]
    if not failures:
        lines.append("None.")
    for col, t in failures:
        msg = _md_escape(t.get("message") or "")
        lines.append(f"- `{t['nodeid']}` [{_md_escape(col)}] {t['outcome']}"
                     + (f" ({t.get('phase')})" if t.get("phase") not in (None, "", "call") else "")
                     + (f": {msg}" if msg else ""))
    return "\n".join(lines) + "\n"


def _cell_class(cell: dict | None) -> str:
    if not cell:
        return "none"
    if cell["failed"]:
        return "fail"
    if cell["passed"]:
        return "pass"
    return "skip"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.3em .6em}
th{background:#eee}td.num{text-align:right;font-family:monospace}
td.pass{background:#d7f5d7}td.fail{background:#f8c9c9}td.skip{background:#eee}
td.none{color:#999;text-align:center}code{font-size:.9em}"""


def render_html(m: Merged) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<title>pytest-amdgpu report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>pytest-amdgpu report</h1>", "<table><tr><th>file</th><th>host</th>"
           "<th>backend</th><th>KFD</th><th>targets</th><th>tests</th><th>passed</th>"
           "<th>failed</th><th>skipped</th></tr>"]
    for r in m.runs:
        partial = " (partial)" if r["partial"] else ""
        out.append(f"<tr><td>{e(r['file'])}{partial}</td><td>{e(str(r['host'] or '?'))}</td>"
                   f"<td>{e(str(r['backend'] or '?'))}</td><td>{e(str(r['kfd'] or '?'))}</td>"
                   f"<td>{e(', '.join(r['targets']))}</td><td class=\"num\">{r['tests']}</td>"
                   f"<td class=\"num\">{r['passed']}</td><td class=\"num\">{r['failed']}</td>"
                   f"<td class=\"num\">{r['skipped']}</td></tr>")
    out.append("</table>")
    out.append("<h2>Area x target</h2><p>passed/failed/skipped; xN: known failures</p>")
    out.append("<table><tr><th>area</th>" + "".join(f"<th>{e(c)}</th>" for c in m.columns)
               + "</tr>")
    matrix = m.matrix()
    for area in sorted(matrix):
        cells = "".join(
            f"<td class=\"num {_cell_class(matrix[area].get(c))}\">"
            f"{e(format_cell(matrix[area].get(c)))}</td>" for c in m.columns)
        out.append(f"<tr><th>{e(area)}</th>{cells}</tr>")
    totals = m.totals()
    out.append("<tr><th>total</th>" + "".join(
        f"<td class=\"num {_cell_class(totals.get(c))}\"><b>{e(format_cell(totals.get(c)))}"
        "</b></td>" for c in m.columns) + "</tr></table>")
    failures = m.failures()
    out.append(f"<h2>Failures ({len(failures)})</h2>")
    if failures:
        out.append("<ul>")
        for col, t in failures:
            out.append(f"<li><code>{e(t['nodeid'])}</code> [{e(col)}] {e(t['outcome'])}: "
                       f"{e(t.get('message') or '')}</li>")
        out.append("</ul>")
    else:
        out.append("<p>None.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="--amdgpu-report JSON files to merge")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write the Markdown matrix to PATH (default: stdout)")
    parser.add_argument("--html", metavar="PATH", help="write the HTML matrix to PATH")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_amdgpu report",
        description="Merge --amdgpu-report JSON files into one Markdown and HTML matrix.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        reports = [(path, load_report(path)) for path in args.files]
    except ReportError as exc:
        print(f"python -m pytest_amdgpu report: {exc}", file=sys.stderr)
        return 2
    merged = merge(reports)
    markdown = render_markdown(merged)
    try:
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as f:
                f.write(markdown)
        else:
            sys.stdout.write(markdown)
        if args.html:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(render_html(merged))
    except OSError as exc:
        print(f"python -m pytest_amdgpu report: cannot write {exc.filename}: {exc.strerror}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
