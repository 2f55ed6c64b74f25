"""Personal data in transcripts (JA and EN) is found and tagged; ordinary numbers and words are not.

Then what a training export keeps of a call (no caller or tracking number, redacted text, padded
spans) and how its audio is silenced: exactly the spans, every other sample untouched.
"""

import io
import json
import time
import wave

import numpy as np
import pytest

from stream_server.evidence.redaction import find_personal_data, luhn_valid, redact_text
from stream_server.evidence.training import PAD_S, redact_call, silenced_wav

REDACTED = [
    # phone numbers: JP domestic and international, separators, full-width, as Whisper writes digits
    ("My phone number is 090-1234-5678.", "My phone number is [PHONE]."),
    ("You can call me on 03 1234 5678, thanks.", "You can call me on [PHONE], thanks."),
    ("It's 090.1234.5678", "It's [PHONE]"),
    ("My mobile is +81 90-1234-5678.", "My mobile is [PHONE]."),
    ("+819012345678", "[PHONE]"),
    ("Call (555) 123-4567 after five.", "Call [PHONE] after five."),
    ("The number is 0, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8.", "The number is [PHONE]."),
    ("My number is 091,234,0678.", "My number is [PHONE]."),  # how Whisper base wrote one fixture line
    ("My phone number is 090", "My phone number is [PHONE]"),  # the rest fell into the next utterance
    ("電話番号は090-1234-5678です。", "電話番号は[PHONE]です。"),
    ("携帯は０９０－１２３４－５６７８です", "携帯は[PHONE]です"),
    ("番号は090の1234の5678です", "番号は[PHONE]です"),
    ("090ー1234ー5678にお願いします", "[PHONE]にお願いします"),
    # cards: grouped, or Luhn-valid in one run
    ("My card is 4111 1111 1111 1111.", "My card is [CARD]."),
    ("カード番号は4111-1111-1111-1111です", "カード番号は[CARD]です"),
    ("5500000000000004 is the card", "[CARD] is the card"),
    # e-mail, written or spoken
    ("Mail me at john.smith@example.com please.", "Mail me at [EMAIL] please."),
    ("It is john dot smith at gmail dot com.", "It is [EMAIL]."),
    ("メールはyamada@example.co.jpです", "メールは[EMAIL]です"),
    ("yamada アットマーク example.co.jp です", "[EMAIL] です"),
    # postal codes and addresses
    ("〒150-0001 東京都渋谷区神宮前1丁目2番3号です", "[ADDRESS]です"),
    ("郵便番号は1500001です", "[ADDRESS]です"),
    ("住所は横浜市中区山下町1-2-3です", "住所は[ADDRESS]です"),
    ("大阪府大阪市北区梅田に住んでいます", "[ADDRESS]に住んでいます"),
    ("三丁目5番地の角です", "[ADDRESS]の角です"),
    ("東京都千代田区丸の内1-1-1です", "[ADDRESS]です"),
    ("私の住まいは横浜市中区山下町1-2-3", "私の住まいは[ADDRESS]"),
    ("I live at 221B Baker Street, London.", "I live at [ADDRESS], London."),
    ("Send it to 12 Main St. Apt 4 please", "Send it to [ADDRESS] please"),
    ("Springfield, IL 62704", "Springfield, [ADDRESS]"),
    ("The postcode is SW1A 1AA.", "The postcode is [ADDRESS]."),
    # names the speaker gives
    ("Hi, my name is John Smith and I have a question.", "Hi, my name is [NAME] and I have a question."),
    ("Thank you for calling, this is Emma speaking.", "Thank you for calling, this is [NAME] speaking."),
    ("It is under the name Brown, for a coffee machine.", "It is under the name [NAME], for a coffee machine."),
    ("Can I speak to Mr. Tanaka?", "Can I speak to Mr. [NAME]?"),
    ("私の名前は山田太郎です。", "私の名前は[NAME]です。"),
    ("はい、山田と申します。", "はい、[NAME]と申します。"),
    ("名前は佐藤です", "名前は[NAME]です"),
]

# Hard negatives: numbers and words a call is full of that are not personal data.
KEPT = [
    "I'm calling about my bill.",
    "I am calling about order 12.",
    "I called 3 times last week.",
    "It costs $1,200,000 in total.",
    "I paid 5000 yen for it.",
    "The refund is 12.50 dollars.",
    "I ordered it on 2024-03-15.",
    "This is the third time I am calling!",
    "This is unacceptable.",
    "I have been waiting for three weeks! Where is my order!",
    "3時に電話します。",
    "5000円です。",
    "1,500,000円の請求が来ました",
    "月額四千円でございます。",
    "二週間も待っているんですよ。",
    "一番近い店舗はどこですか",
    "市場調査の件です",
    "お客様のお名前をお願いします。",
    "2024年3月15日に注文しました",
    "10時30分に伺います",
    "注文番号は12345です",
    "先週買ったテレビのことなんですが。",
    "横浜の市場1-2番線で待っています",
]


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_personal_data_is_replaced_by_its_tag(text, expected):
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_numbers_and_words_are_kept(text):
    assert redact_text(text) == (text, [])


def test_findings_are_offsets_into_the_original_text():
    text = "携帯は０９０－１２３４－５６７８、メールはa@b.jpです"
    findings = find_personal_data(text)
    assert [(f.kind, text[f.start:f.end]) for f in findings] == [
        ("PHONE", "０９０－１２３４－５６７８"), ("EMAIL", "a@b.jp")]


def test_card_numbers_are_told_by_luhn_or_grouping():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert redact_text("4111 1111 1111 1112")[0] == "[CARD]"  # mis-heard digit, card grouping
    assert redact_text("4222222222222")[0] == "[CARD]"  # 13 digits, Luhn-valid
    assert redact_text("4222222222223")[0] == "[PHONE]"  # 13 digits, neither: still redacted


def _call() -> dict:
    """A stored call as CallStore.get_call returns it, personal data in metadata and text."""
    return {
        "id": "c0ffee", "carrier": "twilio", "tracks": ["caller", "agent"], "language": "en",
        "status": "ended", "end_reason": "completed", "duration": 20.0, "max_score": 0.91, "alert_count": 1,
        "caller_number": "+819077778810", "tracking_number": "+81120555010", "agent": "Emma",
        "ad_source": "google", "campaign": "billing_help", "started_at": "2025-04-01T09:30:00+00:00",
        "metadata": {"from": "+819077778810", "tracking_number": "+81120555010", "utm_source": "google",
                     "utm_campaign": "billing_help", "utm_content": "call 0312345678", "agent": "Emma"},
        "segments": [
            {"id": 1, "track": "caller", "start": 0.05, "end": 3.0, "text": "My phone number is 090-1234-5678.",
             "language": "en", "scores": {"insult": 0.01}, "max_score": 0.01, "abusive": False,
             "loudness_dbfs": -27.0, "loudness_delta_db": None},
            {"id": 2, "track": "caller", "start": 5.0, "end": 7.0, "text": "You are a useless idiot.",
             "language": "en", "scores": {"insult": 0.91}, "max_score": 0.91, "abusive": True,
             "loudness_dbfs": -21.0, "loudness_delta_db": 6.0},
            {"id": 3, "track": "agent", "start": 8.0, "end": 19.95, "text": "Thank you Mr. Brown.",
             "language": "en", "scores": {}, "max_score": 0.0, "abusive": False,
             "loudness_dbfs": -26.0, "loudness_delta_db": None},
        ],
        "alerts": [{"id": "a1", "call_id": "c0ffee", "category": "insult", "severity": "high", "score": 0.91,
                    "text": "my name is John Smith you idiot", "start": 5.0, "end": 7.0, "track": "caller",
                    "rule": "text", "status": "acknowledged", "acknowledged_by": "sato",
                    "metadata": {"from": "+819077778810"}, "created_at": "2025-04-01T09:30:07+00:00"}],
        "actions": [{"alert_id": "a1", "action": "acknowledge", "by": "sato", "note": "called 0312345678"}],
    }


def test_training_transcript_keeps_ad_tags_and_scores_but_no_numbers_or_names():
    transcript, redactions = redact_call(_call())
    raw = json.dumps(transcript, ensure_ascii=False)
    for secret in ("9077778810", "120555010", "0312345678", "1234", "Emma", "sato", "Brown", "John", "2025-04-01"):
        assert secret not in raw, secret
    assert transcript["call"]["ad_tags"] == {"utm_source": "google", "utm_campaign": "billing_help"}
    assert (transcript["call"]["ad_source"], transcript["call"]["language"]) == ("google", "en")
    assert [s["text"] for s in transcript["segments"]] == [
        "My phone number is [PHONE].", "You are a useless idiot.", "Thank you Mr. [NAME]."]
    assert transcript["segments"][1]["scores"] == {"insult": 0.91} and transcript["segments"][1]["abusive"]
    assert transcript["alerts"][0]["text"] == "my name is [NAME] you idiot"
    assert transcript["alerts"][0]["status"] == "acknowledged" and "metadata" not in transcript["alerts"][0]
    # Whole segments, padded, clipped to the call; never the value.
    assert [(r.track, r.start, r.end, r.kind, r.source) for r in redactions] == [
        ("caller", 0.0, 3.0 + PAD_S, "PHONE", "segment"),
        ("agent", 8.0 - PAD_S, 20.0, "NAME", "segment"),
        ("caller", 5.0 - PAD_S, 7.0 + PAD_S, "NAME", "alert"),
    ]


def _wav(samples: np.ndarray, rate: int = 8000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def test_silenced_wav_zeroes_exactly_the_spans(tmp_path):
    rng = np.random.default_rng(7)
    original = rng.integers(-20000, 20000, 8000 * 3).astype("<i2")
    path = tmp_path / "caller.wav"
    path.write_bytes(_wav(original))
    with wave.open(io.BytesIO(silenced_wav(path, [(0.5, 1.0), (2.9, 9.0)]))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        out = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    silenced = np.zeros(len(original), dtype=bool)
    silenced[4000:8000] = silenced[23200:] = True
    assert len(out) == len(original)
    assert not out[silenced].any()
    assert np.array_equal(out[~silenced], original[~silenced])


def test_silenced_wav_refuses_what_the_recorder_never_writes(tmp_path):
    path = tmp_path / "stereo.wav"
    path.write_bytes(_wav(np.zeros(200), channels=2))
    with pytest.raises(ValueError, match="mono 16-bit"):
        silenced_wav(path, [(0.0, 0.01)])


@pytest.mark.parametrize("loop", ["区", "横浜市中区", "一", "1-", "1 ", "a dot ", "名前は", "my name is Abc "])
def test_a_whisper_repetition_loop_is_scanned_in_linear_time(loop):
    """Whisper sometimes repeats one token for a whole window; nested patterns would then
    backtrack for minutes (区 × 60 did, before addresses were found in two steps)."""
    text = loop * (600 // len(loop))
    started = time.perf_counter()
    find_personal_data(text)
    assert time.perf_counter() - started < 1.0
