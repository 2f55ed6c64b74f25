#!/usr/bin/env python3
"""Synthesise the two-track test calls under ``tests/fixtures/calls/``.

Run from the repository root (about 15 s on 2 cores)::

    .venv/bin/python scripts/make_fixtures.py            # all calls
    .venv/bin/python scripts/make_fixtures.py en_abusive  # just one
    .venv/bin/python scripts/make_fixtures.py --out /tmp/calls

Needs (build-time only, never at run time):

* ``espeak-ng`` on PATH (Debian package ``espeak-ng``, tested with 1.51) — English speech.
* ``pyopenjtalk-plus`` (PyPI, ``pip install -e .[train]``) — Japanese speech, bundled
  ``mei_normal`` HTS voice and dictionary.
* ``numpy``, ``scipy``, ``soxr`` (the project's own deps) for resampling and the telephone
  band-pass; stdlib ``audioop`` (``audioop-lts`` on 3.13+) for G.711 μ-law.
* ``sox`` is *not* required: everything after TTS happens in NumPy so that the output does not
  depend on sox's version or its dither.  (``sox -t raw -r 8000 -e u-law -b 8 -c 1 X.ulaw X.wav``
  is handy for listening to a result.)

For every call NAME it writes

* ``NAME.caller.ulaw`` / ``NAME.agent.ulaw`` — raw 8 kHz mono μ-law, no header, exactly what a
  Twilio ``<Stream track="both_tracks">`` delivers per track.  Both files have the same length;
  each holds only its own party's speech (plus a faint line-noise floor) and is silent while the
  other party talks.
* ``NAME.json`` — ground truth: metadata and every utterance with its track, tight start/end (s
  from call start: TTS silence is trimmed before placing), text, ``abusive`` and ``categories``.

Audio chain per utterance: TTS → soxr resample to 8 kHz → 300–3400 Hz band-pass (4th-order
Butterworth, zero-phase) → trim leading/trailing silence (-40 dB under the loudest 5 ms frame)
→ level to a target active level (per line ``effort``, see below) → 3 ms fades.  Then placed on
the track, a -66 dBFS band-limited noise floor added to both tracks, and μ-law encoded.

Vocal effort of a caller line (``Line.effort``):

* ``normal`` — the caller's own voice at -27 dBFS active level.
* ``raised`` — every abusive line (``X``): +6 dB (2x amplitude) over ``normal``, higher pitch and
  slower (espeak-ng pitch 55 / 125 wpm instead of 35 / 155; pyopenjtalk half_tone -1 / speed 0.85
  instead of -5 / 0.9).
* ``shout`` — shouting without abusive words (``S``, category ``shouting``): raised vocal effort,
  not just gain.  Voice: higher and faster (espeak-ng pitch 80 / 175 wpm; pyopenjtalk half_tone 0,
  i.e. +5 semitones, speed 1.05).  After the band-pass a +6 dB RBJ high-shelf (f0 1 kHz, slope 1,
  single pass) flattens the spectral tilt as in shouted speech; then +12 dB active level over
  ``normal`` (-15 dBFS); then a soft clipper that is linear up to 0.5 (-6 dBFS) and bends above it
  with tanh towards a 0.85 ceiling (-1.4 dBFS, continuous slope, no hard clipping); the knee costs
  well under 1 dB of active level.

Deterministic: fixed voices, a per-call ``random.Random(name)`` for gaps and a fixed-seed NumPy
generator for the noise.  Rerunning with the same espeak-ng / pyopenjtalk-plus versions gives
byte-identical files.

Verify the result with ``scripts/check_fixtures_asr.py`` (faster-whisper base on the μ-law).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
from scipy.signal import butter, lfilter, sosfiltfilt

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "calls"

LEAD_SILENCE = 0.5
TAIL_SILENCE = 0.6
GAP_RANGE = (0.5, 1.0)

# Active speech level (dBFS over frames within 30 dB of the loudest) per kind of line.
LEVEL_AGENT = -26.0
LEVEL_CALLER = -27.0
RAISED_DB = 6.0  # abusive caller lines: 2x amplitude
SHOUT_DB = 12.0  # shouted caller lines: 4x amplitude
EFFORT_DB = {"normal": 0.0, "raised": RAISED_DB, "shout": SHOUT_DB}
SHOUT_SHELF_HZ = 1000.0
SHOUT_SHELF_DB = 6.0
SOFT_KNEE = 0.5  # shouted lines: linear below, tanh towards SOFT_CEILING above
SOFT_CEILING = 0.85
NOISE_DBFS = -66.0
PEAK_LIMIT = 0.89  # about -1 dBFS: never clip

# ---------------------------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------------------------

# espeak-ng: voice, pitch (0-99), speed (wpm).  Agent: US female variant, higher pitch.
# Caller: British male, low pitch; raised (abusive) lines: higher pitch, slower.
EN_AGENT = {"voice": "en-us+f3", "pitch": 60, "speed": 175}
EN_CALLER = {"voice": "en-gb", "pitch": 35, "speed": 155}
EN_CALLER_RAISED = {"voice": "en-gb", "pitch": 55, "speed": 125}
# Shouted (non-abusive) lines: raised vocal effort, higher and faster.
EN_CALLER_SHOUT = {"voice": "en-gb", "pitch": 80, "speed": 175}

# pyopenjtalk (mei_normal is the only bundled voice): pitch shift in half-tones and speed.
JA_AGENT = {"half_tone": 2.0, "speed": 1.1}
JA_CALLER = {"half_tone": -5.0, "speed": 0.9}
JA_CALLER_RAISED = {"half_tone": -1.0, "speed": 0.85}
JA_CALLER_SHOUT = {"half_tone": 0.0, "speed": 1.05}


@dataclass
class Line:
    track: str  # "caller" | "agent"
    text: str
    abusive: bool = False
    categories: list[str] = field(default_factory=list)
    # Words the downstream classifier needs to hear (used by check_fixtures_asr.py).  On shouted
    # lines they only check that the shouted speech stays intelligible.
    keywords: list[str] = field(default_factory=list)
    effort: str = "normal"  # "normal" | "raised" | "shout" (see the module docstring)

    def __post_init__(self) -> None:
        if self.effort not in EFFORT_DB:
            raise ValueError(f"unknown effort {self.effort!r}")


def A(text: str) -> Line:
    return Line("agent", text)


def C(text: str, keywords: list[str] | None = None) -> Line:
    return Line("caller", text, keywords=keywords or [])


def X(text: str, categories: list[str], keywords: list[str]) -> Line:
    """Abusive caller line (spoken louder, as a raised voice)."""
    return Line("caller", text, abusive=True, categories=categories, keywords=keywords,
                effort="raised")


def S(text: str, keywords: list[str] | None = None) -> Line:
    """Shouted caller line with no abusive words: category ``shouting``, ``shout`` effort."""
    return Line("caller", text, abusive=True, categories=["shouting"], keywords=keywords or [],
                effort="shout")


@dataclass
class Call:
    name: str
    language: str
    description: str
    metadata: dict
    lines: list[Line]


CALLS: list[Call] = [
    Call(
        "en_calm",
        "en",
        "Calm English call: caller checks a router delivery date. No abuse.",
        {"from": "+819034561201", "utm_source": "google", "utm_campaign": "fiber_spring_search",
         "tracking_number": "+81501230001"},
        [
            A("Thank you for calling Sakura Internet, this is Emma speaking. How can I help you today?"),
            C("Hi, I would like to check when my new router will be delivered."),
            A("Of course. Could you give me your order number, please?"),
            C("Yes, I placed the order online last Monday."),
            A("Thank you. Your router was shipped yesterday, and it should arrive on Thursday."),
            C("Great, thank you very much for your help."),
            A("You are welcome. Have a nice day."),
        ],
    ),
    Call(
        "en_frustrated",
        "en",
        "Frustrated but polite English caller: late delivery, demands a refund and a manager. "
        "Negative, firm, not abusive (no alert expected).",
        {"from": "+818012345602", "utm_source": "facebook", "utm_campaign": "appliance_sale_retarget",
         "tracking_number": "+81501230002"},
        [
            A("Sakura Appliances, this is Emma. How can I help you?"),
            C("Hello. I ordered a washing machine, and it still has not arrived."),
            A("I am sorry to hear that. Let me check your order."),
            C("Honestly, this is unacceptable. I have been waiting for two weeks.", ["unacceptable"]),
            A("I understand. The delivery was delayed at our warehouse."),
            C("I want a refund, and I want to speak to your manager.", ["refund", "manager"]),
            A("I will arrange the refund, and my manager will call you today."),
            C("Fine. Please make sure it happens this time."),
        ],
    ),
    Call(
        "en_abusive",
        "en",
        "Abusive English caller: starts calm, then three raised-voice lines (two insults, one "
        "threat) aimed at the agent, then calms down again.",
        {"from": "+817098765403", "utm_source": "yahoo", "utm_campaign": "mobile_plan_brand",
         "tracking_number": "+81120555003"},
        [
            A("Sakura Mobile, this is Emma. How can I help you?"),
            C("Hello, I have a question about my monthly bill."),
            A("Certainly. Could I have your name, please?"),
            X("You are a useless idiot.", ["insult"], ["useless", "idiot"]),
            A("Sir, please, I am trying to help you."),
            X("Shut up, you stupid moron.", ["insult"], ["shut up", "stupid", "moron"]),
            A("Please do not speak to me like that."),
            X("I know where you work, and I will kill you.", ["threat"], ["kill"]),
            A("Threats are not acceptable. This call is recorded."),
            C("Fine. Please just correct my bill."),
        ],
    ),
    Call(
        "ja_calm",
        "ja",
        "穏やかな日本語の通話: 契約プランの確認。暴言なし。",
        {"from": "+819011112204", "utm_source": "line", "utm_campaign": "hikari_campaign_2024",
         "tracking_number": "+81120111004"},
        [
            A("お電話ありがとうございます。さくらネットの田中です。"),
            C("すみません、インターネットの契約内容を確認したいんですが。"),
            A("かしこまりました。お名前をお願いします。"),
            C("はい、山田と申します。"),
            A("現在のプランは、月額四千円でございます。"),
            C("わかりました。丁寧にありがとうございます。"),
            A("他にご不明な点はございますか。"),
            C("いいえ、大丈夫です。失礼します。"),
        ],
    ),
    Call(
        "ja_frustrated",
        "ja",
        "不満はあるが丁寧な日本語の通話: 配送遅延、責任者と返金を要求、弁護士への相談に言及。"
        "強い不満だが暴言ではない(アラート不要)。",
        {"from": "+818022223305", "utm_source": "instagram", "utm_campaign": "kaden_summer_sale",
         "tracking_number": "+81501230005"},
        [
            A("お電話ありがとうございます。さくら家電です。"),
            C("先月注文した冷蔵庫が、まだ届かないんですけど。"),
            A("申し訳ございません。すぐにお調べします。"),
            C("二週間も待っているんですよ。納得できません。", ["納得できません"]),
            A("配送が遅れているようです。"),
            C("責任者と話したいです。返金してください。", ["責任者", "返金"]),
            A("責任者から折り返しご連絡いたします。"),
            C("場合によっては、弁護士に相談します。", ["弁護士"]),
        ],
    ),
    Call(
        "ja_abusive",
        "ja",
        "カスハラ通話: 穏やかに始まり、怒鳴り声で暴言(侮辱2回、脅迫1回)の後、"
        "再び落ち着く。",
        {"from": "+817033334406", "utm_source": "youtube", "utm_campaign": "tv_kaikae_display",
         "tracking_number": "+81120222006"},
        [
            A("お電話ありがとうございます。さくら電機です。"),
            C("先週買ったテレビのことなんですが。"),
            A("はい、どうされましたか。"),
            X("ふざけるな、この役立たずが。", ["insult"], ["ふざけるな", "役立たず"]),
            A("申し訳ございません。"),
            X("お前みたいな馬鹿は、辞めちまえ。", ["insult"], ["馬鹿", "辞めちまえ"]),
            A("そのようなお言葉はお控えください。"),
            X("殺すぞ、覚えておけよ。", ["threat"], ["殺す", "覚えておけ"]),
            A("これ以上続く場合は、通話を終了いたします。"),
            C("わかりました。とにかく交換してください。"),
        ],
    ),
    Call(
        "ja_coercion",
        "ja",
        "カスハラ通話(過剰要求): 穏やかに始まり、怒鳴り声で土下座と自宅への謝罪訪問を要求(強要2回)の後、"
        "再び落ち着く。",
        {"from": "+817044445507", "utm_source": "smartnews", "utm_campaign": "sofa_autumn_sale",
         "tracking_number": "+81120333007"},
        [
            A("お電話ありがとうございます。さくら家具です。"),
            C("先週届いたソファのことなんですが。"),
            A("はい、どのようなご用件でしょうか。"),
            C("脚に大きな傷がついていたんです。"),
            A("大変申し訳ございません。"),
            # Mei's ザ is heard as た by Whisper base (土下座 -> 溶けた) whatever the wording or
            # speed; 頭をつけて is the part of the demand that survives ASR.
            X("床に頭をつけて、土下座しろ。", ["coercion"], ["土下座", "頭をつけて"]),
            A("申し訳ございませんが、それはいたしかねます。"),
            X("今すぐ家まで謝りに来い。", ["coercion"], ["家まで", "来い"]),
            A("ご自宅への訪問はできかねますが、新しい商品をお送りします。"),
            C("わかりました。それでお願いします。"),
        ],
    ),
    Call(
        "en_threat",
        "en",
        "Threatening English caller: starts calm about a rejected claim, then two raised-voice "
        "threats aimed at the agent, then calms down again.",
        {"from": "+818055556608", "utm_source": "bing", "utm_campaign": "car_insurance_quote",
         "tracking_number": "+81501230008"},
        [
            A("Sakura Insurance, this is Emma. How can I help you?"),
            C("Hello, my claim for the car accident was rejected."),
            A("I am sorry to hear that. Let me look at your file."),
            # espeak's raised "back" is heard as "mark" and "tonight" as "to hide": avoided.
            X("Watch yourself. I will be waiting for you outside your office.", ["threat"],
              ["watch yourself", "waiting for you"]),
            A("Sir, I cannot continue this call if you threaten me."),
            X("I am going to come down there, and hurt you.", ["threat"],
              ["come down there", "hurt you"]),
            A("This call is being recorded. Please stay calm."),
            C("Okay. Just review my claim again, please."),
        ],
    ),
    Call(
        "en_shouting",
        "en",
        "Shouting English caller, no abusive words: three calm lines about a late order, then two "
        "shouted complaints (category shouting), then calm again. Only the voice is abusive.",
        {"from": "+819066667709", "utm_source": "tiktok", "utm_campaign": "online_shop_launch",
         "tracking_number": "+81120444009"},
        [
            A("Sakura Online Shop, this is Emma speaking."),
            C("Hello, I am calling about an order I placed last month."),
            A("May I have your name?"),
            C("It is under the name Brown, for a coffee machine."),
            A("I see it was delayed."),
            C("Yes, I have already called about it twice."),
            S("I have been waiting for three weeks! Where is my order!", ["three weeks", "order"]),
            A("I understand. Let me check right now."),
            S("This is the third time I am calling!", ["third time", "calling"]),
            A("Someone will call you today."),
            C("Alright. Thank you, I appreciate it."),
        ],
    ),
    Call(
        "en_phone",
        "en",
        "Calm English caller who says their phone number: personal data the training export "
        "must redact (tests/test_evidence.py). No abuse; kept out of the classifier test batches.",
        {"from": "+819077778810", "utm_source": "google", "utm_campaign": "billing_help_search",
         "tracking_number": "+81120555010"},
        [
            A("Sakura Mobile, this is Emma. How can I help you?"),
            # "my bill" alone is heard as "my real".
            C("Hello, I am calling about my phone bill."),
            A("Certainly. What number can we call you back on?"),
            # Whisper base writes this as 090-1234-5678. Digits read one by one ("0 9 0, 1 2 3 4,
            # ...") come out as "near-ode, I'm 6, 7, 8" in this voice, and "call me back on" as
            # "call me Mark on" followed by a wrong digit (9678).
            C("My phone number is 090-1234-5678.", ["090", "1234", "5678"]),
            A("Thank you. We will call you back today."),
            C("Thank you."),
        ],
    ),
]

# ---------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------


def tts_en(text: str, voice: dict) -> tuple[np.ndarray, int]:
    cmd = ["espeak-ng", "-v", voice["voice"], "-p", str(voice["pitch"]), "-s", str(voice["speed"]),
           "-a", "100", "--stdout", text]
    wav = subprocess.run(cmd, check=True, capture_output=True).stdout
    # espeak-ng --stdout writes a WAV with unknown sizes (0x7fffffff); parse the fmt chunk and
    # take everything after the "data" tag.
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not return WAV")
    fmt = wav.find(b"fmt ")
    rate = int.from_bytes(wav[fmt + 12 : fmt + 16], "little")
    data = wav.find(b"data")
    pcm = np.frombuffer(wav[data + 8 :][: (len(wav) - data - 8) // 2 * 2], dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def tts_ja(text: str, voice: dict) -> tuple[np.ndarray, int]:
    import pyopenjtalk

    x, sr = pyopenjtalk.tts(text, speed=voice["speed"], half_tone=voice["half_tone"])
    return np.asarray(x, dtype=np.float64) / 32768.0, int(sr)


CALLER_VOICES = {
    "en": {"normal": EN_CALLER, "raised": EN_CALLER_RAISED, "shout": EN_CALLER_SHOUT},
    "ja": {"normal": JA_CALLER, "raised": JA_CALLER_RAISED, "shout": JA_CALLER_SHOUT},
}


def voice_for(lang: str, line: Line) -> dict:
    if line.track == "agent":
        return EN_AGENT if lang == "en" else JA_AGENT
    return CALLER_VOICES[lang][line.effort]


_BANDPASS = butter(4, [300.0, 3400.0], btype="bandpass", fs=RATE, output="sos")


def telephone_band(x: np.ndarray) -> np.ndarray:
    return sosfiltfilt(_BANDPASS, x)


def high_shelf(x: np.ndarray, f0: float = SHOUT_SHELF_HZ,
               gain_db: float = SHOUT_SHELF_DB) -> np.ndarray:
    """RBJ-cookbook high-shelf biquad (slope 1), one pass: +gain_db above f0, 0 dB far below."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0 / RATE
    cw, alpha = np.cos(w0), np.sin(w0) / 2.0 * np.sqrt(2.0)
    b = [a * ((a + 1) + (a - 1) * cw + 2 * np.sqrt(a) * alpha), -2 * a * ((a - 1) + (a + 1) * cw),
         a * ((a + 1) + (a - 1) * cw - 2 * np.sqrt(a) * alpha)]
    den = [(a + 1) - (a - 1) * cw + 2 * np.sqrt(a) * alpha, 2 * ((a - 1) - (a + 1) * cw),
           (a + 1) - (a - 1) * cw - 2 * np.sqrt(a) * alpha]
    return lfilter(b, den, x)


def soft_clip(x: np.ndarray, knee: float = SOFT_KNEE, ceiling: float = SOFT_CEILING) -> np.ndarray:
    """Identity up to |x| = knee, then knee + (ceiling - knee) * tanh(excess / (ceiling - knee)):
    continuous slope, never reaches ceiling."""
    mag = np.abs(x)
    over = mag > knee
    span = ceiling - knee
    y = x.copy()
    y[over] = np.sign(x[over]) * (knee + span * np.tanh((mag[over] - knee) / span))
    return y


def frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    e = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    return 10.0 * np.log10(np.maximum(e, 1e-12))


def trim(x: np.ndarray, rel_db: float = -40.0, frame: int = 40) -> np.ndarray:
    """Cut leading/trailing frames more than rel_db under the loudest 5 ms frame."""
    db = frame_db(x, frame)
    keep = np.flatnonzero(db > db.max() + rel_db)
    return x[keep[0] * frame : (keep[-1] + 1) * frame]


def active_level_db(x: np.ndarray, frame: int = 160) -> float:
    db = frame_db(x, frame)
    active = db[db > db.max() - 30.0]
    return float(10.0 * np.log10(np.mean(10.0 ** (active / 10.0))))


def render_line(lang: str, line: Line) -> np.ndarray:
    voice = voice_for(lang, line)
    x, sr = tts_en(line.text, voice) if lang == "en" else tts_ja(line.text, voice)
    x = soxr.resample(x, sr, RATE, quality="VHQ")
    x = telephone_band(x)
    if line.effort == "shout":
        x = high_shelf(x)
    x = trim(x)
    target = (LEVEL_AGENT if line.track == "agent" else LEVEL_CALLER) + EFFORT_DB[line.effort]
    x = x * 10.0 ** ((target - active_level_db(x)) / 20.0)
    if line.effort == "shout":
        x = soft_clip(x)
    fade = int(0.003 * RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x


def build_call(call: Call) -> tuple[dict[str, np.ndarray], dict]:
    rng = random.Random(call.name)
    pieces = []
    t = LEAD_SILENCE
    for i, line in enumerate(call.lines):
        if i:
            t += round(rng.uniform(*GAP_RANGE), 2)
        audio = render_line(call.language, line)
        start = int(round(t * RATE))
        pieces.append((line, start, audio))
        t = (start + len(audio)) / RATE
    total = int(round((t + TAIL_SILENCE) * RATE))

    seed = zlib.crc32(call.name.encode())
    noise_rng = np.random.default_rng(seed)
    tracks = {}
    for k, track in enumerate(("caller", "agent")):
        noise = telephone_band(noise_rng.standard_normal(total))
        noise *= 10.0 ** (NOISE_DBFS / 20.0) / np.sqrt(np.mean(noise**2))
        tracks[track] = noise

    utterances = []
    for line, start, audio in pieces:
        tracks[line.track][start : start + len(audio)] += audio
        utt = {
            "track": line.track,
            "start": round(start / RATE, 3),
            "end": round((start + len(audio)) / RATE, 3),
            "text": line.text,
            "abusive": line.abusive,
            "categories": list(line.categories),
        }
        if line.keywords:
            utt["keywords"] = list(line.keywords)
        utterances.append(utt)

    for track, x in tracks.items():
        peak = float(np.max(np.abs(x)))
        if peak > PEAK_LIMIT:
            raise RuntimeError(f"{call.name}.{track}: peak {peak:.3f} would clip; lower the levels")

    truth = {
        "name": call.name,
        "language": call.language,
        "description": call.description,
        "sample_rate": RATE,
        "encoding": "mulaw",
        "duration": round(total / RATE, 3),
        "metadata": call.metadata,
        "utterances": utterances,
    }
    return tracks, truth


def to_ulaw(x: np.ndarray) -> bytes:
    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
    return audioop.lin2ulaw(pcm, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="calls to build (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    known = {c.name: c for c in CALLS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown call(s) {unknown}; known: {sorted(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for call in CALLS:
        if args.names and call.name not in args.names:
            continue
        tracks, truth = build_call(call)
        for track, x in tracks.items():
            (args.out / f"{call.name}.{track}.ulaw").write_bytes(to_ulaw(x))
        (args.out / f"{call.name}.json").write_text(
            json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        peaks = {t: 20 * np.log10(np.max(np.abs(x))) for t, x in tracks.items()}
        n_abusive = sum(u["abusive"] for u in truth["utterances"])
        print(f"{call.name:14s} {truth['duration']:6.2f} s  {len(truth['utterances']):2d} utterances "
              f"({n_abusive} abusive)  peak caller {peaks['caller']:.1f} dBFS agent {peaks['agent']:.1f} dBFS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
