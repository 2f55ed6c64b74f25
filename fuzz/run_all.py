"""Run every atheris target in fuzz/ for a bounded budget, then the hypothesis suites, and write
how many generated inputs each parser survived to benchmarks/RESULTS.md (section "fuzz").

    python fuzz/run_all.py [--runs N] [--seconds S] [--examples N] [--targets twilio ...]

Each target runs in a subprocess of its own, one after another (one core), on a fresh copy of its
committed seeds in a scratch folder, so fuzz/corpus/ is never changed. libFuzzer stops a target at
whichever of --runs / --seconds comes first, or at its first finding. A finding (crash-*, timeout-*
or oom-* file: an exception the endpoint does not answer, unsafe events, a hang, a memory blow-up)
is kept in the scratch folder, named in the output with the command that replays it, and makes the
exit status 1. So does a failing hypothesis test (test_hostile_input.py, test_fuzz_targets.py with
STREAM_SERVER_FUZZ_EXAMPLES=--examples). Needs atheris (`pip install -e '.[fuzz]'`).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
sys.path[:0] = [str(FUZZ_DIR), str(ROOT)]

from harness import CORPUS, target_names  # noqa: E402

from benchmarks.report import cpu_model, update_section  # noqa: E402

HYPOTHESIS_FILES = ["tests/test_hostile_input.py", "tests/test_fuzz_targets.py"]
# test_hostile_input.py names a parser by its protocol where that differs from the module.
TEST_ALIASES = {"jambonz_stream": "l16_stream"}
FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")


@dataclass
class TargetRun:
    parser: str
    rc: int | None = None
    executed: int | None = None
    exec_per_s: int | None = None
    cov: int | None = None
    ft: int | None = None
    cov_start: int | None = None
    ft_start: int | None = None
    seeds: int = 0
    corpus_end: int | None = None
    new_units: int | None = None
    slowest_s: int | None = None
    peak_rss_mb: int | None = None
    libfuzzer_seed: str | None = None
    wall_s: float = 0.0
    findings: list[Path] = field(default_factory=list)
    excerpt: str = ""
    error: str = ""
    work: Path | None = None

    @property
    def failed(self) -> bool:
        return bool(self.findings or self.error)


def _stat(log: str, name: str) -> int | None:
    match = re.search(rf"^stat::{name}:\s+(\d+)", log, re.MULTILINE)
    return int(match.group(1)) if match else None


STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/", re.MULTILINE)


def _excerpt(log: str) -> str:
    """What the target said about its finding: the Python traceback, or libFuzzer's error line."""
    if "=== Uncaught Python exception: ===" in log:
        text = log.split("=== Uncaught Python exception: ===", 1)[1]
        return text.split("==", 1)[0].strip()[-3000:]
    errors = [line for line in log.splitlines() if "ERROR: libFuzzer" in line or "SUMMARY:" in line]
    return "\n".join(errors[:4])


def run_target(parser: str, args: argparse.Namespace, scratch: Path) -> TargetRun:
    run = TargetRun(parser)
    run.work = Path(tempfile.mkdtemp(prefix=f"{parser}-", dir=scratch))
    corpus, artifacts = run.work / "corpus", run.work / "artifacts"
    shutil.copytree(CORPUS / parser, corpus)
    artifacts.mkdir()
    run.seeds = sum(1 for path in corpus.iterdir() if path.is_file())
    command = [sys.executable, str(FUZZ_DIR / f"fuzz_{parser}.py"), str(corpus),
               f"-runs={args.runs or -1}", f"-max_total_time={args.seconds}", f"-timeout={args.input_timeout}",
               f"-rss_limit_mb={args.rss_limit_mb}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    if args.seed is not None:
        command.append(f"-seed={args.seed}")
    env = dict(os.environ, FUZZ_STRICT="1" if args.strict else "0")
    log_path = run.work / "fuzz.log"
    started = time.monotonic()
    with log_path.open("w") as log_file:
        try:
            run.rc = subprocess.run(command, cwd=run.work, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                    timeout=args.seconds + args.input_timeout + 300).returncode
        except subprocess.TimeoutExpired:
            run.error = "the target did not stop within its budget (killed)"
    run.wall_s = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    run.executed = _stat(log, "number_of_executed_units")
    run.exec_per_s = _stat(log, "average_exec_per_sec")  # 0 in a run under a second
    run.new_units = _stat(log, "new_units_added")
    run.slowest_s = _stat(log, "slowest_unit_time_sec")
    run.peak_rss_mb = _stat(log, "peak_rss_mb")
    statuses = STATUS.findall(log)
    if statuses:
        run.cov_start, run.ft_start = int(statuses[0][2]), int(statuses[0][3])
        run.cov, run.ft, run.corpus_end = int(statuses[-1][2]), int(statuses[-1][3]), int(statuses[-1][4])
    seed = re.search(r"^INFO: Seed: (\d+)", log, re.MULTILINE)
    run.libfuzzer_seed = seed.group(1) if seed else None
    run.findings = sorted(p for p in artifacts.iterdir() if p.name.startswith(FINDING_PREFIXES))
    if run.findings:
        run.excerpt = _excerpt(log)
    elif run.rc not in (0, None) and not run.error:
        run.error = f"exit status {run.rc} without a crash file: see {log_path}"
        run.excerpt = "\n".join(log.splitlines()[-15:])
    elif run.executed is None and not run.error:
        run.error = f"no final stats in {log_path}"
    return run


@dataclass
class HypothesisRun:
    rc: int = 0
    wall_s: float = 0.0
    structured: dict[str, int] = field(default_factory=dict)  # test_hostile_input.py, per parser
    generated: dict[str, int] = field(default_factory=dict)  # test_fuzz_targets.py, per parser
    failed: list[str] = field(default_factory=list)
    summary: str = ""
    log: Path | None = None


def _parser_of(test: str, parsers: list[str]) -> str | None:
    param = re.search(r"\[(\w+)\]$", test)
    if param:
        return param.group(1) if param.group(1) in parsers else None
    name = test.rsplit("::", 1)[-1].removeprefix("test_")
    for alias, parser in TEST_ALIASES.items():
        if name.startswith(alias + "_"):
            return parser
    return next((p for p in sorted(parsers, key=len, reverse=True) if name.startswith(p + "_")), None)


def run_hypothesis(examples: int, parsers: list[str], scratch: Path) -> HypothesisRun:
    result = HypothesisRun(log=scratch / "hypothesis.log")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               *HYPOTHESIS_FILES]
    env = dict(os.environ, STREAM_SERVER_FUZZ_EXAMPLES=str(examples))
    started = time.monotonic()
    with result.log.open("w") as log_file:
        result.rc = subprocess.run(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT).returncode
    result.wall_s = time.monotonic() - started
    current = None
    for line in result.log.read_text(errors="replace").splitlines():
        header = re.match(r"^(tests/\S+::\S+):$", line)
        if header:
            current = header.group(1)
            continue
        passing = re.search(r"- (\d+) passing", line)
        if current and passing:
            parser = _parser_of(current, parsers)
            if parser:
                counts = result.generated if "test_fuzz_targets" in current else result.structured
                counts[parser] = counts.get(parser, 0) + int(passing.group(1))
        failed = re.match(r"^FAILED (\S+)", line)
        if failed:
            result.failed.append(failed.group(1))
        if re.match(r"^=*\s*\d+ (passed|failed)", line):
            result.summary = re.sub(r" in [\d.]+s.*$", "", line.strip("= "))
    return result


def _num(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {cpu_model()}, {memory:.0f} GiB; Python {platform.python_version()}, "
            f"atheris {_version('atheris')}, hypothesis {_version('hypothesis')}; one target at a time, one core")


def budget(args: argparse.Namespace) -> str:
    if not args.runs:
        return f"{args.seconds} s"
    return f"{args.runs:,} inputs or {args.seconds} s, whichever came first"


def report(command: str, args: argparse.Namespace, runs: list[TargetRun], hyp: HypothesisRun | None,
           wall_s: float) -> str:
    mode = "strict (FUZZ_STRICT=1: only MalformedMessage / UnsupportedStream accepted)" if args.strict else \
        "as the endpoints answer (FUZZ_STRICT=0)"
    lines = [
        "## Hostile input: fuzzing and property-based tests (issue 8)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- atheris: each target (fuzz/fuzz_<parser>.py) for {budget(args)}, from its committed seeds with "
        f"fuzz/wire.dict; a single input over {args.input_timeout} s or "
        f"{args.rss_limit_mb} MB is a finding; accepted errors {mode}",
        f"- hypothesis: {', '.join(HYPOTHESIS_FILES)} with STREAM_SERVER_FUZZ_EXAMPLES={args.examples}"
        if hyp else "- hypothesis: not run (--no-hypothesis)",
        f"- Wall time: {wall_s / 60:.1f} min",
        "",
        "A parser survives an input when it returns events that are safe to store, publish and play, or raises "
        "only the errors its endpoint answers (fuzz/harness.py). Coverage is libFuzzer's count of instrumented "
        "branch edges / features (`cov` / `ft`) in stream_server, plus the third-party parsers a target hands "
        "peer bytes to (audiohook: http_message_signatures, http_sf; webrtc: aiortc.sdp), at the seeds → at the "
        "end.",
        "",
        "| parser | atheris inputs | exec/s | coverage cov (ft) | corpus seeds → units | findings "
        "| hypothesis: mutated sessions (test_hostile_input) | hypothesis: generated bytes into the target "
        "(test_fuzz_targets) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total_inputs = total_structured = total_generated = total_findings = 0
    for run in runs:
        findings = str(len(run.findings)) if not run.error else f"error: {run.error}"
        structured = hyp.structured.get(run.parser) if hyp else None
        generated = hyp.generated.get(run.parser) if hyp else None
        coverage = f"{_num(run.cov_start)} ({_num(run.ft_start)}) → {_num(run.cov)} ({_num(run.ft)})"
        rate = run.exec_per_s or (round(run.executed / run.wall_s) if run.executed and run.wall_s else None)
        lines.append(f"| {run.parser} | {_num(run.executed)} | {_num(rate)} | {coverage} "
                     f"| {run.seeds} → {_num(run.corpus_end)} | {findings} "
                     f"| {_num(structured) if structured is not None else '—'} "
                     f"| {_num(generated) if hyp else '—'} |")
        total_inputs += run.executed or 0
        total_structured += structured or 0
        total_generated += generated or 0
        total_findings += len(run.findings)
    lines.append(f"| **all** | **{total_inputs:,}** | | | | **{total_findings}** | **{total_structured:,}** "
                 f"| **{total_generated:,}** |")
    lines.append("")
    lines.append("frames is the JSON frame layer every WebSocket carrier shares (no protocol of its own, so no "
                 "mutated-session test: the carriers' tests run it). A run's coverage and corpus stay in a scratch "
                 "folder; fuzz/corpus/ keeps only the seeds fuzz/make_corpus.py writes.")
    if hyp:
        outcome = "passed" if hyp.rc == 0 else f"FAILED: {', '.join(hyp.failed) or f'exit status {hyp.rc}'}"
        lines.append(f"\nHypothesis suites: {hyp.summary or '?'}, {hyp.wall_s:.0f} s ({outcome}).")
    broken = [run for run in runs if run.failed]
    if broken:
        lines += ["", "### Findings", ""]
        for run in broken:
            for path in run.findings or [None]:
                where = f"`{path}`; replay: `python fuzz/fuzz_{run.parser}.py {path}`" if path else run.error
                lines.append(f"- {run.parser}: {where}")
            if run.excerpt:
                lines += ["", "```", run.excerpt, "```", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000,
                        help="inputs per target at most (libFuzzer -runs); 0: no limit, --seconds only")
    parser.add_argument("--seconds", type=int, default=120, help="seconds per target at most (-max_total_time)")
    parser.add_argument("--examples", type=int, default=2000,
                        help="hypothesis examples per test (STREAM_SERVER_FUZZ_EXAMPLES)")
    parser.add_argument("--targets", nargs="+", choices=target_names(), default=target_names(), metavar="PARSER",
                        help=f"targets to run (default: all of {', '.join(target_names())})")
    parser.add_argument("--input-timeout", type=int, default=20, help="one input slower than this is a finding")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory over this is a finding")
    parser.add_argument("--seed", type=int, help="libFuzzer -seed, to repeat a run's mutations")
    parser.add_argument("--strict", action="store_true",
                        help="FUZZ_STRICT=1: the JSON carriers may raise only MalformedMessage / UnsupportedStream")
    parser.add_argument("--no-hypothesis", action="store_true", help="skip the hypothesis suites")
    parser.add_argument("--no-report", action="store_true", help="print the report, leave RESULTS.md alone")
    parser.add_argument("--scratch", type=Path, help="where runs keep their corpus, log and findings "
                        "(default: a new temporary folder; kept when something was found)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder even when nothing was found")
    args = parser.parse_args(argv)
    try:
        import atheris  # noqa: F401
    except ImportError:
        parser.error("atheris is not installed: pip install -e '.[fuzz]'")
    command = "python fuzz/run_all.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="stream-server-fuzz-", dir=args.scratch))
    started = time.monotonic()
    runs = []
    for name in args.targets:
        print(f"fuzz_{name}: {budget(args)} ...", flush=True)
        run = run_target(name, args, scratch)
        runs.append(run)
        status = (f"FOUND {len(run.findings)}: {', '.join(map(str, run.findings))}" if run.findings
                  else f"ERROR: {run.error}" if run.error else "no finding")
        print(f"  {_num(run.executed)} inputs in {run.wall_s:.0f} s, cov {_num(run.cov)} ft {_num(run.ft)}, "
              f"{status}", flush=True)
        if run.findings:
            print(f"  replay: python fuzz/fuzz_{name}.py {run.findings[0]}\n{run.excerpt}", flush=True)
    hyp = None
    if not args.no_hypothesis:
        print(f"hypothesis: {' '.join(HYPOTHESIS_FILES)} with STREAM_SERVER_FUZZ_EXAMPLES={args.examples} ...",
              flush=True)
        hyp = run_hypothesis(args.examples, args.targets, scratch)
        print(f"  {hyp.summary}, {hyp.wall_s:.0f} s" + (f"; log {hyp.log}" if hyp.rc else ""), flush=True)
    text = report(command, args, runs, hyp, time.monotonic() - started)
    print("\n" + text)
    failed = any(run.failed for run in runs) or (hyp is not None and hyp.rc != 0)
    if not args.no_report:
        update_section("fuzz", text)
        print("written to benchmarks/RESULTS.md (section fuzz)")
    if failed or args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
