"""The atheris targets in fuzz/, run without atheris: every committed seed and a few hundred
generated inputs per target must pass its TestOneInput (no `Finding`), and every module in
stream_server/media/ that reads peer input must have a target.

Generated inputs are the committed seeds mutated the way libFuzzer mutates them (bytes inserted,
overwritten, erased, copied; tokens of fuzz/wire.dict spliced in; whole messages dropped,
repeated or swapped) plus raw bytes. STREAM_SERVER_FUZZ_EXAMPLES sets the examples per target
(default 300); `fuzz/run_all.py` runs this file with thousands and atheris for real.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "fuzz"
MEDIA_DIR = ROOT / "stream_server" / "media"
if str(FUZZ_DIR) not in sys.path:
    sys.path.insert(0, str(FUZZ_DIR))

import harness  # noqa: E402  (fuzz/harness.py: needs fuzz/ on sys.path, as the targets do)

EXAMPLES = int(os.environ.get("STREAM_SERVER_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGETS = harness.target_names()
TOKENS = harness.dictionary_tokens()
FRAME_STARTS = [harness.SEPARATOR, harness.SEPARATOR + harness.TEXT, harness.SEPARATOR + harness.BINARY]

# Modules of stream_server/media/ that read no peer input themselves, and why. Any other module
# there needs a target fuzz/fuzz_<module>.py, or an entry in SHARED: a carrier added without a
# target fails test_every_wire_parser_has_a_target.
NOT_WIRE = {
    "__init__": "package marker",
    "audio_files": "reads local audio files for the simulator and offline analysis",
    "codecs": "decodes audio a parser has already framed (reached through every audio target)",
    "errors": "exception types",
    "events": "the event types parsers produce",
    "levels": "loudness curves of stored recordings",
    "vad": "speech segmentation of decoded PCM",
}
# Parsing pieces with no wire format of their own, and the targets whose parsers run them.
SHARED = {
    "event_stream": ("twilio", "telnyx"),  # the Twilio/Telnyx frame routing
    "credentials": ("telnyx", "vonage", "l16_stream"),  # token checks on attacker text
    "metadata": ("frames", "twilio", "telnyx", "vonage", "l16_stream", "audiohook", "webrtc"),
}
# A module defining one of these reads peer input, whatever NOT_WIRE says.
PARSER_SIGNS = re.compile(r"^\s*def (feed|parse_\w+)\(", re.MULTILINE)


def _target(parser: str) -> ModuleType:
    return importlib.import_module(f"fuzz_{parser}")


def test_targets_import_without_atheris():
    already = "atheris" in sys.modules
    for parser in TARGETS:
        _target(parser)
    assert not harness.FUZZING
    if not already:
        assert "atheris" not in sys.modules, "a target imported atheris outside `python fuzz/fuzz_<parser>.py`"


def test_every_wire_parser_has_a_target():
    modules = sorted(path.stem for path in MEDIA_DIR.glob("*.py"))
    problems = []
    for module in modules:
        source = (MEDIA_DIR / f"{module}.py").read_text(encoding="utf-8")
        if module in NOT_WIRE:
            if PARSER_SIGNS.search(source):
                problems.append(f"{module}: listed as reading no peer input, but defines feed()/parse_*()")
        elif module in SHARED:
            for parser in SHARED[module]:
                if parser not in TARGETS:
                    problems.append(f"{module}: SHARED names {parser!r}, which has no target")
                    continue
                parser_source = (MEDIA_DIR / f"{parser}.py").read_text(encoding="utf-8")
                target_source = (FUZZ_DIR / f"fuzz_{parser}.py").read_text(encoding="utf-8")
                if f"from .{module} import" not in parser_source \
                        and f"from stream_server.media.{module} import" not in target_source:
                    problems.append(f"{module}: SHARED names {parser!r}, but neither {parser}.py nor its target "
                                    "imports it")
        elif module not in TARGETS:
            problems.append(f"{module}: no fuzz/fuzz_{module}.py (or add it to NOT_WIRE / SHARED with a reason)")
        else:
            target_source = (FUZZ_DIR / f"fuzz_{module}.py").read_text(encoding="utf-8")
            if f"from stream_server.media import {module}" not in target_source \
                    and f"stream_server.media.{module}" not in target_source:
                problems.append(f"fuzz_{module}.py does not import stream_server.media.{module}")
    for parser in TARGETS:
        if parser not in modules:
            problems.append(f"fuzz_{parser}.py names no module of stream_server/media/")
    assert not problems, "\n".join(problems)


def test_every_target_has_seeds_that_make_corpus_writes():
    import make_corpus

    assert sorted(make_corpus.SEEDS) == TARGETS
    assert sorted(p.name for p in harness.CORPUS.iterdir() if p.is_dir()) == TARGETS
    for parser, build in make_corpus.SEEDS.items():
        committed = {path.stem: path.read_bytes() for path in (harness.CORPUS / parser).glob("*.seed")}
        assert committed == build(), f"fuzz/corpus/{parser}/ is stale: run `python fuzz/make_corpus.py`"


@pytest.mark.parametrize("parser", TARGETS)
def test_target_takes_its_seeds(parser, monkeypatch):
    target = _target(parser)
    produced: list = []
    if hasattr(target, "check_events"):
        def recording(events, *args, **kwargs):
            events = list(events)
            produced.extend(events)
            return harness.check_events(events, *args, **kwargs)

        monkeypatch.setattr(target, "check_events", recording)
    seeds = harness.seeds(parser)
    assert seeds, f"fuzz/corpus/{parser}/ is empty"
    for seed in seeds:
        target.TestOneInput(seed)
    if hasattr(target, "check_events"):
        # The seeds get past the handshake (token, signature, start frame): the fuzzer starts deep.
        assert any(type(event).__name__ == "Audio" for event in produced), f"no seed of {parser} yields audio"


def _splice(buffer: bytes, at: int, cut: int, insert: bytes) -> bytes:
    return buffer[:at] + insert + buffer[at + cut:]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed changed the way libFuzzer changes one (plus message-level edits), or raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2048))
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "overwrite", "erase", "copy", "token", "frame", "messages"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data = _splice(data, at, 0, draw(st.binary(min_size=1, max_size=64)))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data = _splice(data, at, len(chunk), chunk)
        elif kind == "erase":
            data = _splice(data, at, draw(st.integers(1, 256)), b"")
        elif kind == "copy":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data = _splice(data, at, 0, other[start:start + draw(st.integers(1, 512))])
        elif kind == "token":
            data = _splice(data, at, draw(st.integers(0, 8)), draw(st.sampled_from(TOKENS)))
        elif kind == "frame":
            data = _splice(data, at, 0, draw(st.sampled_from(FRAME_STARTS)))
        else:
            parts = data.split(harness.SEPARATOR)
            i, j = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
            edit = draw(st.sampled_from(["drop", "repeat", "swap"]))
            if edit == "drop" and len(parts) > 1:
                del parts[i]
            elif edit == "repeat":
                parts.insert(j, parts[i])
            else:
                parts[i], parts[j] = parts[j], parts[i]
            data = harness.SEPARATOR.join(parts)
    return data[:harness.MAX_LEN]


@pytest.mark.parametrize("parser", TARGETS)
@FUZZ
@given(data=st.data())
def test_target_survives_generated_input(parser, data):
    _target(parser).TestOneInput(data.draw(mutated(harness.seeds(parser)), label="input"))
