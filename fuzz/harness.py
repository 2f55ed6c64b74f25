"""What every atheris target in fuzz/ shares: one input → a peer's messages, the errors a parser
may raise, and what its events must look like.

An input is a list of messages joined by SEPARATOR. A part that starts with b"t" is a WebSocket
text frame (the rest as UTF-8; bytes that are not UTF-8 are replaced, since a WebSocket text frame
that is not valid UTF-8 never reaches the app), any other part a binary frame (without its leading
b"b" when it has one). `fuzz/make_corpus.py` writes the seeds in this form.

Nothing here imports atheris unless a target runs as a script (FUZZING), so the targets' TestOneInput
run under pytest (tests/test_fuzz_targets.py) with only the parsers installed. fuzz/run_all.py runs
every target with atheris and writes the report (fuzz/README.md).

A target raises `Finding` when a parser broke its contract: an exception outside the ones the
endpoint answers (`accepted`), or events that are not safe to store, publish and play.
FUZZ_STRICT=1 narrows the JSON carriers' accepted errors to MalformedMessage / UnsupportedStream,
so that a parser's blind spots (a TypeError the endpoint only survives) show up as findings too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python fuzz/fuzz_x.py` from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

# Fuzzing for real: a target was started as `python fuzz/fuzz_<parser>.py`. Only then is atheris
# needed, and the parser modules (these imports and the target's own) get coverage instrumentation.
FUZZING = Path(sys.argv[0]).name.startswith("fuzz_")
if FUZZING:
    logging.disable(logging.CRITICAL)  # parsers log what they drop: millions of lines, and slow


@contextlib.contextmanager
def instrumented(*also: str) -> Iterator[None]:
    """Instrument the stream_server modules imported inside, when FUZZING; else a no-op. `also`
    names third-party packages that parse the peer's bytes for a parser (aiortc's SDP parser, the
    RFC 9421 / structured-field parsers), so coverage guides the fuzzer through them too."""
    if not FUZZING:
        yield
        return
    import atheris

    with atheris.instrument_imports(include=["stream_server", *also]):
        yield


with instrumented():
    from stream_server.media.errors import UNFORESEEN_INPUT_ERRORS, MalformedMessage, UnsupportedStream
    from stream_server.media.events import Audio, CallStarted

SEPARATOR = b"\x1e\x1e"  # two ASCII record separators: rare in JSON and in the seeds' audio
TEXT, BINARY = b"t", b"b"
CORPUS = Path(__file__).resolve().parent / "corpus"
MAX_STREAM_S = 86_400.0

STRICT = os.environ.get("FUZZ_STRICT") == "1"
DOCUMENTED_ERRORS: tuple[type[Exception], ...] = (MalformedMessage, UnsupportedStream)
# What run_media_stream answers without losing the call (api/media.py): a dropped, counted
# message, or 1003 for UnsupportedStream. Anything else escaping a parser would cost the call.
JSON_CARRIER_ERRORS: tuple[type[Exception], ...] = (
    DOCUMENTED_ERRORS if STRICT else (*DOCUMENTED_ERRORS, *UNFORESEEN_INPUT_ERRORS)
)


class Finding(AssertionError):
    """A parser broke its contract on this input."""


def messages(data: bytes) -> list[str | bytes]:
    """One fuzz input → the WebSocket messages it stands for (see the module docstring)."""
    out: list[str | bytes] = []
    for part in data.split(SEPARATOR):
        if part[:1] == TEXT:
            out.append(part[1:].decode("utf-8", "replace"))
        else:
            out.append(part[1:] if part[:1] == BINARY else part)
    return out


def encode(frames: Iterable[str | bytes | dict]) -> bytes:
    """Messages → one input in the form `messages` reads (dicts are sent as JSON text)."""
    parts = []
    for frame in frames:
        if isinstance(frame, dict):
            frame = json.dumps(frame)
        parts.append(TEXT + frame.encode() if isinstance(frame, str) else BINARY + frame)
    return SEPARATOR.join(parts)


def feed_all(feed: Callable[[Any], list], frames: Iterable[str | bytes],
             accepted: tuple[type[Exception], ...] = JSON_CARRIER_ERRORS) -> list:
    """Feed every message as the endpoint does, going on after each error it answers; any other
    exception is a Finding."""
    events: list = []
    for frame in frames:
        try:
            events += feed(frame)
        except accepted:
            continue
        except Exception as exc:
            raise Finding(f"{type(exc).__name__} escaped the parser: {exc!r}"[:500]) from exc
    return events


def check(condition: bool, problem: str) -> None:
    if not condition:
        raise Finding(problem)


def check_text(text: Any, what: str, max_chars: int | None = None) -> None:
    """A carrier-supplied string that goes to the database, the bus and every alert."""
    check(isinstance(text, str), f"{what} is {type(text).__name__}, not str")
    check("\x00" not in text, f"{what} holds NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Finding(f"{what} holds a lone surrogate") from None
    if max_chars is not None:
        check(len(text) <= max_chars, f"{what} is {len(text)} characters (over {max_chars})")


def check_events(events: Iterable[Any], rates: tuple[int, int] = (8000, 48000)) -> None:
    """What a parser hands the pipeline can be stored, published and played."""
    low, high = rates
    for event in events:
        if isinstance(event, CallStarted):
            check_text(event.carrier_call_id, "carrier_call_id", 128)
            check_text(event.stream_id, "stream_id", 128)
            check(len(event.metadata) <= 64, f"{len(event.metadata)} metadata entries")
            for key, value in event.metadata.items():
                check_text(key, "metadata key", 128)
                check_text(value, f"metadata[{key[:20]!r}]", 1024)
            json.dumps(event.metadata)
            check(bool(event.tracks) and set(event.tracks) <= {"caller", "agent"}, f"tracks {event.tracks!r}")
            check(low <= event.sample_rate <= high, f"sample rate {event.sample_rate}")
        elif isinstance(event, Audio):
            check(event.track in ("caller", "agent"), f"track {event.track!r}")
            check(isinstance(event.pcm16, bytes) and bool(event.pcm16) and len(event.pcm16) % 2 == 0,
                  f"pcm16 of {len(event.pcm16)} bytes")
            check(isinstance(event.t, float | int) and math.isfinite(event.t) and 0.0 <= event.t < MAX_STREAM_S,
                  f"audio time {event.t!r}")
            check(low <= event.sample_rate <= high, f"sample rate {event.sample_rate}")


def seeds(parser: str) -> list[bytes]:
    """The committed seed inputs of one target (fuzz/corpus/<parser>/)."""
    return [path.read_bytes() for path in sorted((CORPUS / parser).iterdir()) if path.is_file()]


FUZZ_DIR = Path(__file__).resolve().parent
DICTIONARY = FUZZ_DIR / "wire.dict"


def target_names() -> list[str]:
    """Every atheris target in fuzz/: `fuzz_<parser>.py` → "<parser>" (its corpus folder's name)."""
    return sorted(path.stem.removeprefix("fuzz_") for path in FUZZ_DIR.glob("fuzz_*.py"))


def dictionary_tokens(path: Path = DICTIONARY) -> list[bytes]:
    """The entries of a libFuzzer dictionary (`"value"` or `name="value"`, with \\, \\" and \\xAB
    escapes), for generating inputs without atheris (tests/test_fuzz_targets.py)."""
    tokens = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or '"' not in line:
            continue
        body, out, i = line[line.index('"') + 1:line.rindex('"')], bytearray(), 0
        while i < len(body):
            if body[i] == "\\" and body[i + 1:i + 2] == "x":
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
            elif body[i] == "\\":
                out += body[i + 1].encode()
                i += 2
            else:
                out += body[i].encode()
                i += 1
        tokens.append(bytes(out))
    return tokens
# As large as the biggest message a carrier may send (max_message_bytes' default), so the fuzzer
# can grow an input as far as a peer can.
MAX_LEN = 65536


def fuzz_main(test_one_input: Callable[[bytes], None]) -> None:
    """`python fuzz/fuzz_<parser>.py [corpus dirs] [-atheris_runs=N] [libFuzzer flags]`, with the
    shared dictionary and MAX_LEN unless the command line names its own."""
    import atheris

    argv = list(sys.argv)
    if not any(arg.startswith("-dict=") for arg in argv):
        argv.append(f"-dict={DICTIONARY}")
    if not any(arg.startswith("-max_len=") for arg in argv):
        argv.append(f"-max_len={MAX_LEN}")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
