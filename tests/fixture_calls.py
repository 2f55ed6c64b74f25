"""Access to the committed synthetic calls in tests/fixtures/calls (see its README)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stream_server.media.codecs import ulaw_to_pcm16

CALLS_DIR = Path(__file__).parent / "fixtures" / "calls"
CALL_NAMES = ("en_calm", "en_frustrated", "en_abusive", "ja_calm", "ja_frustrated", "ja_abusive")
# Coercion (土下座), threat and shouting-only calls: the classifier end-to-end tests stream them as
# their own batch; the ASR word checks (test_asr_engine) cover CALL_NAMES only.
NEW_CALL_NAMES = ("ja_coercion", "en_threat", "en_shouting")
ALL_CALL_NAMES = CALL_NAMES + NEW_CALL_NAMES


@dataclass(frozen=True)
class FixtureCall:
    name: str
    truth: dict

    @property
    def caller_path(self) -> Path:
        return CALLS_DIR / f"{self.name}.caller.ulaw"

    @property
    def agent_path(self) -> Path:
        return CALLS_DIR / f"{self.name}.agent.ulaw"

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.truth["metadata"])

    def ulaw(self, track: str) -> bytes:
        return (CALLS_DIR / f"{self.name}.{track}.ulaw").read_bytes()

    def pcm16(self, track: str) -> bytes:
        return ulaw_to_pcm16(self.ulaw(track))

    def utterances(self, track: str | None = None, abusive: bool | None = None) -> list[dict]:
        return [
            u
            for u in self.truth["utterances"]
            if (track is None or u["track"] == track) and (abusive is None or u["abusive"] == abusive)
        ]


def load_call(name: str) -> FixtureCall:
    return FixtureCall(name, json.loads((CALLS_DIR / f"{name}.json").read_text(encoding="utf-8")))


def overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    return a_start < b_end and b_start < a_end


def simulate_args(name: str, *extra: str) -> list[str]:
    """`stream-server simulate` arguments that play fixture call `name` with its metadata."""
    call = load_call(name)
    args = [str(call.caller_path), "--agent", str(call.agent_path), *extra]
    for key, value in call.metadata.items():
        args += ["--param", f"{key}={value}"]
    return args
