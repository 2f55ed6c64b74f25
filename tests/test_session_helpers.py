"""Small rules the call session and API rely on."""

import numpy as np
import pytest

from stream_server.media.credentials import secret_matches
from stream_server.pipeline.loudness import LoudnessMeter, active_level_dbfs
from stream_server.pipeline.session import language_from_metadata


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"language": "ja"}, "ja"),
        ({"language": "ja-JP"}, "ja"),
        ({"language": "en_US"}, "en"),
        ({"lang": "EN"}, "en"),
        ({"language": ""}, None),
        ({"language": "日本語"}, None),
        ({"language": "x"}, None),
        ({}, None),
    ],
)
def test_language_custom_parameter(metadata, expected):
    assert language_from_metadata(metadata) == expected


def test_a_secret_matches_only_exactly():
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cret", None)
    assert not secret_matches("s3cret", "s3cret ")
    assert not secret_matches("s3cret", "\udc80")  # a lone surrogate is compared, not a crash


def tone(amplitude: float, seconds: float = 1.0) -> bytes:
    """A 220 Hz tone at the pipeline's 16 kHz."""
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * amplitude * 32767).astype("<i2").tobytes()


def test_raised_voice_is_measured_against_the_speakers_own_baseline():
    meter = LoudnessMeter()
    assert meter.observe_utterance(tone(0.05))[1] is None  # no baseline yet
    meter.observe_utterance(tone(0.05))
    level, delta = meter.observe_utterance(tone(0.1))  # twice the amplitude: +6 dB
    assert delta == pytest.approx(6.0, abs=0.1)
    assert level == pytest.approx(active_level_dbfs(tone(0.1)))


def test_pauses_inside_an_utterance_do_not_dilute_its_level():
    loud = tone(0.1, 0.5)
    with_pause = loud + b"\x00\x00" * 16000 + loud
    assert active_level_dbfs(with_pause) == pytest.approx(active_level_dbfs(loud), abs=0.1)
