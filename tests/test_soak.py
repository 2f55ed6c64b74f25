"""The soak (benchmarks/soak.py, issue 8) run short: a warm-up round, then 30 s of 3 lines.

The script starts its own server, plays fixture calls over Twilio, Telnyx and jambonz with a
seeded share dropped mid-call and a seeded share with malformed messages injected, then checks
every call's status, recording, segments, alerts and bad-message count, and the server's idle
memory, file descriptors, sockets and log against the baseline taken after the warm-up.

Seed 23 with these shares dials 7 calls: two dropped (one of them with junk injected first),
junk on a completed Telnyx and a completed jambonz call, and four abusive fixtures completed
(their alerts are checked). About 100 s on 2 cores: two calls per line back to back, plus the
server's start, the drains and the settles.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--minutes", "0.5", "--lines", "3", "--seed", "23", "--drop-share", "0.3", "--malformed-share", "0.5",
        "--settle", "5", "--no-write"]


def test_short_soak_passes_every_check(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), *ARGS, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    print(proc.stdout[-6000:])
    assert out.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
    summary = json.loads(out.read_text())
    failed = {name: c["failures"][:5] for name, c in summary["checks"].items() if not c["passed"]}
    assert not failed and proc.returncode == 0, failed or proc.stderr[-4000:]
    figures = summary["figures"]
    # The run exercised what it is there to exercise.
    assert figures["dropped"] >= 1 and figures["hostile"] >= 2 and figures["abusive_completed"] >= 1, figures
    assert set(figures["by_carrier"]) == {"twilio", "telnyx", "stream"}, figures["by_carrier"]
    assert figures["alerted_lines"] >= 1, figures
