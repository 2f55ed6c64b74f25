"""Personal data in transcript text, Japanese and English, found and replaced by tags.

`find_personal_data(text)` returns where phone and card numbers, e-mail addresses, postal
codes and addresses, and names a speaker gives are; `redact_text(text)` replaces each with
`[PHONE]`, `[CARD]`, `[EMAIL]`, `[ADDRESS]` or `[NAME]`. The patterns read transcripts as
Whisper writes them: digits for spoken numbers, grouped with hyphens, spaces, dots, commas
or の, full-width forms too. They err on the side of redacting: any run of seven or more
digits is taken for a phone number unless it is plainly an amount, a date or a decimal.

What they cannot see, they cannot redact: a number Whisper wrote as words, a name said
without one of the phrases below, speech that was not transcribed at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

PHONE, CARD, EMAIL, ADDRESS, NAME = "PHONE", "CARD", "EMAIL", "ADDRESS", "NAME"
KINDS = (PHONE, CARD, EMAIL, ADDRESS, NAME)


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its kind and where it is (character offsets, end exclusive)."""

    kind: str
    start: int
    end: int


def _fold(text: str) -> str:
    """Full-width digits, letters and signs as ASCII, one character for one, so that offsets
    into the folded text are offsets into the original."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


# -- numbers: phone, card, postal code -------------------------------------------------------

# Between digit groups: hyphens and dashes (ー as Japanese ASR writes them), dots, commas
# ("1, 2, 3, 4" is how Whisper writes digits read one by one), の (090の1234の5678), spaces.
_SEP = r"(?:[ \t]*[-‐‑‒–—―−ー.,の][ \t]*|[ \t]+)"
_GROUP = r"(?:\(\d{1,4}\)[ \t]*)?\d+"
_NUMBER_RUN = re.compile(rf"(?<![0-9A-Za-z])(\+[ \t]*)?{_GROUP}(?:{_SEP}{_GROUP})*")
_AMOUNT_BEFORE = re.compile(r"[¥$€£][ \t]*$")
_UNIT_AFTER = re.compile(
    r"^[ \t]*(?:円|万|億|千|ドル|ユーロ|%|パーセント|人|件|個|本|枚|回|歳|才|年|月|日|時|分|秒|"
    r"(?i:yen|dollars?|euros?|pounds?|percent|people|times|years?|days?|hours?|minutes?|seconds?|"
    r"km|kg|gb|mb)\b)"
)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"\d+\.\d+")
_DATE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{4}")
# Words just before a short number that make it (part of) a phone number: "my phone number
# is 090" when the rest of the number fell into the next utterance.
_PHONE_CUE = re.compile(
    r"(?i:phone|mobile|cell|telephone|call me|reach me|contact number)|電話|携帯|連絡先"
)
_POSTAL_JA = re.compile(r"(?:〒|郵便番号[はがを:]?)[ \t]*\d{3}[ \t]*[-ーの]?[ \t]*\d{4}")
_POSTAL_EN = re.compile(
    r"(?i:zip(?: code)?|post ?code)(?:[ \t]+is)?[ \t:]*\d{5}(?:-\d{4})?\b"
    r"|\b[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?\b"  # state and ZIP: "Springfield, IL 62704"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?[ \t]+\d[A-Z]{2}\b"  # UK postcode: "SW1A 1AA"
)
_CARD_GROUPS = ((4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4))


def luhn_valid(digits: str) -> bool:
    """The check digit every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _number_kind(text: str, match: re.Match[str]) -> str | None:
    run = match.group(0)
    digits = re.sub(r"\D", "", run)
    before, after = text[: match.start()], text[match.end() :]
    if match.group(1):  # "+81 90 ...": international format
        return PHONE if len(digits) >= 8 else None
    if _AMOUNT_BEFORE.search(before[-8:]) or _UNIT_AFTER.match(after[:16]):
        return None  # 5000円, $1,200,000, 3 times
    if _THOUSANDS.fullmatch(run) or _DECIMAL.fullmatch(run) or _DATE.fullmatch(run):
        return None
    n = len(digits)
    if 13 <= n <= 19:
        groups = tuple(len(g) for g in re.findall(r"\d+", run))
        if luhn_valid(digits) or groups in _CARD_GROUPS or n > 15:
            return CARD
    if n >= 7:
        return PHONE
    if n >= 3 and _PHONE_CUE.search(before[-30:]):
        return PHONE
    return None


def _numbers(text: str) -> Iterator[Finding]:
    for match in _NUMBER_RUN.finditer(text):
        kind = _number_kind(text, match)
        if kind:
            yield Finding(kind, match.start(), match.end())


# -- e-mail --------------------------------------------------------------------------------

_TLD = r"(?i:com|net|org|edu|gov|info|biz|io|me|jp|co\.jp|ne\.jp|or\.jp|ac\.jp|uk|co\.uk)"
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    # as spoken: "john.smith at gmail dot com", "yamada アットマーク example.co.jp"
    # (" dot " only between spaces, so that each split of the words is the only one)
    r"|\b[A-Za-z0-9._%+-]+(?:[ \t]+(?i:dot)[ \t]+[A-Za-z0-9_%+-]+)*"  # john dot smith
    r"[ \t]+(?i:at)[ \t]+[A-Za-z0-9-]+(?:(?:\.|[ \t]+(?i:dot)[ \t]+)[A-Za-z0-9-]+)*"  # at gmail dot co
    rf"(?:\.|[ \t]+(?i:dot)[ \t]+){_TLD}\b"
    r"|(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+[ \t]*(?:アットマーク|アット)[ \t]*"
    r"[A-Za-z0-9-]+(?:[ \t]*(?:\.|ドット)[ \t]*[A-Za-z0-9-]+)+"
)

# -- addresses -----------------------------------------------------------------------------

_KANJI = "\u3005\u4e00-\u9fff"  # 々 and the CJK ideographs (一二三… included)
_KATAKANA = "\u30a1-\u30fa\u30fc"
# Japanese addresses are found in two steps, so that no pattern nests variable-length parts
# (a Whisper loop of 区区区… must not make the regex engine backtrack for minutes): runs of
# address characters first, one character class, then what each run holds.
# の and が join a run (丸の内, 霞が関); a run never starts with one.
_RUN_CHARS = rf"{_KANJI}{_KATAKANA}〇0-9\-‐－"
_ADDRESS_RUN = re.compile(rf"(?:さいたま|つくば|いわき|ひたちなか)?[{_RUN_CHARS}][{_RUN_CHARS}のが]*")
_PREF = re.compile(rf"北海道|東京都|京都府|大阪府|[{_KANJI}]{{2,3}}県")
_MUNI_SUFFIX = "市区町村郡"
_NUM_JA = r"[0-9〇一二三四五六七八九十百千]+"
_BLOCK = re.compile(
    rf"{_NUM_JA}丁目(?:{_NUM_JA}番地?)?(?:{_NUM_JA}号)?|{_NUM_JA}番地(?:{_NUM_JA}号)?|{_NUM_JA}番{_NUM_JA}号"
    r"|(?P<dashed>\d+(?:[-‐－ー]\d+){1,3})"  # 1-2-3: an address only after a municipality
)


def _japanese_addresses(text: str) -> Iterator[Finding]:
    """都道府県 + 市区町村 (東京都渋谷区神南), 市区町村 + block numbers (横浜市中区山下町1-2-3), or
    block numbers with 丁目/番地/号 alone (三丁目5番地)."""
    for run in _ADDRESS_RUN.finditer(text):
        chars, base = run.group(0), run.start()
        pref = _PREF.search(chars)
        after = pref.end() if pref else 1
        muni = next((i for i in range(after, len(chars))
                     if chars[i] in _MUNI_SUFFIX and not chars[i - 1].isdigit() and chars[i - 1] not in "のが"), None)
        # without a prefecture the address starts after the last の/が before the municipality (私の横浜市…)
        start = pref.start() if pref else max(chars.rfind("の", 0, muni or 0), chars.rfind("が", 0, muni or 0)) + 1
        blocks = [b for b in _BLOCK.finditer(chars) if muni is not None and b.start() > muni or not b.group("dashed")]
        for block in blocks:
            first = start if muni is not None and block.start() > muni else block.start()
            yield Finding(ADDRESS, base + first, base + block.end())
        if pref and muni is not None and not blocks:
            yield Finding(ADDRESS, base + pref.start(), run.end())  # the town, to the end of the run


_STREET_TYPE = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Crescent|Close|Highway|Hwy|Parkway|Square|Sq)"
)
# House number, one to three capitalised words, a street type: "221B Baker Street", "12 Main St".
_ADDRESS_EN = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?[ \t]+(?:[A-Z][A-Za-z'.-]*[ \t]+){{1,3}}{_STREET_TYPE}\b\.?"
    r"(?:,?[ \t]*(?i:apartment|apt|suite|unit|flat)\.?[ \t]*#?[ \t]*[0-9A-Za-z]+)?"
)

# -- names ---------------------------------------------------------------------------------

_NAME_EN = r"[A-Z][A-Za-z'-]+(?:[ \t]+[A-Z][A-Za-z'-]+){0,2}"
_NAMES_EN = re.compile(
    rf"(?i:\bmy name is|\bmy name's|\bthe name is|\bthe name's|\bunder the name(?: of)?)[ \t]+(?P<name>{_NAME_EN})"
    rf"|(?i:\bthis is)[ \t]+(?P<speaking>{_NAME_EN})[ \t]+(?i:speaking)\b"
    r"|\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?[ \t]+(?P<titled>[A-Z][A-Za-z'-]+)"
)
_NAME_JA_CHARS = rf"[{_KANJI}{_KATAKANA}]{{1,8}}"
_NAMES_JA = re.compile(
    rf"(?:お?名前|氏名|苗字|名字)は[、, \t]*(?P<name>[^\s、。,.!?！？]{{1,12}}?)"
    r"(?=です|でございます|と申します|と言います|といいます|[。、,.]|$)"
    rf"|(?P<moushimasu>{_NAME_JA_CHARS}(?:[ \t\u3000]{_NAME_JA_CHARS})?)(?=と申します|と言います|といいます)"
)


def _pattern(regex: re.Pattern[str], kind: str, text: str) -> Iterator[Finding]:
    for match in regex.finditer(text):
        yield Finding(kind, match.start(), match.end())


def _names(text: str) -> Iterator[Finding]:
    for regex in (_NAMES_EN, _NAMES_JA):
        for match in regex.finditer(text):
            group = next(g for g, v in match.groupdict().items() if v is not None)
            yield Finding(NAME, match.start(group), match.end(group))


def find_personal_data(text: str) -> list[Finding]:
    """Every piece of personal data in `text`, in order, never overlapping (where two
    patterns overlap, their union is one finding of the longer one's kind)."""
    folded = _fold(text)
    found = [
        *_pattern(_EMAIL, EMAIL, folded),
        *_pattern(_POSTAL_JA, ADDRESS, folded),
        *_pattern(_POSTAL_EN, ADDRESS, folded),
        *_numbers(folded),
        *_japanese_addresses(folded),
        *_pattern(_ADDRESS_EN, ADDRESS, folded),
        *_names(folded),
    ]
    merged: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
        last = merged[-1] if merged else None
        if last and f.start < last.end:
            longer = last if last.end - last.start >= f.end - f.start else f
            merged[-1] = Finding(longer.kind, last.start, max(last.end, f.end))
        elif last and f.kind == last.kind and not folded[last.end : f.start].strip():
            merged[-1] = Finding(f.kind, last.start, f.end)  # "〒150-0001 東京都…": one address
        else:
            merged.append(f)
    return merged


def redact_text(text: str) -> tuple[str, list[Finding]]:
    """`text` with each finding replaced by its tag (e.g. `[PHONE]`), and the findings
    (offsets into the original text)."""
    findings = find_personal_data(text)
    out, pos = [], 0
    for f in findings:
        out += [text[pos : f.start], f"[{f.kind}]"]
        pos = f.end
    out.append(text[pos:])
    return "".join(out), findings
