"""Helpers shared by the benchmark scripts: machine description, percentiles and the
marker-delimited sections of benchmarks/RESULTS.md."""

from __future__ import annotations

import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def update_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace the block between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in
    RESULTS.md with ``text``, or append the block when the markers are not there yet."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    content = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if not text.endswith("\n"):
        text += "\n"
    block = f"{begin}\n{text}{end}\n"
    if begin in content and end in content:
        head = content[: content.index(begin)]
        tail = content[content.index(end) + len(end) :].removeprefix("\n")
        content = head + block + tail
    else:
        content = content.rstrip("\n") + "\n\n" + block
    path.write_text(content, encoding="utf-8")
