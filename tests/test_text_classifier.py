"""The committed text abuse model, through the runtime wrapper only (no scikit-learn).

Phrasings below were written for these tests and are not in the training corpus (checked by
``test_phrasings_are_held_out``): they test generalisation, not memory.
"""

import csv
import hashlib

import numpy as np
import pytest

from stream_server.classifiers.text import (
    TextAbuseClassifier,
    default_model_path,
    normalize_text,
    scoring_units,
)

CORPUS = default_model_path().parent / "data" / "text_abuse_v2" / "corpus.csv"
CATEGORIES = ("insult", "threat", "exposure", "coercion", "discrimination", "sexual", "profanity")

INSULTS = [
    "Are you seriously this stupid?",
    "You're a complete and utter moron.",
    "What a useless idiot they've put on the phone.",
    "Shut up and listen to me, you idiot.",
    "お前は本当に役立たずだな。",
    "こんなこともできないのか、このバカが。",
    "てめえみたいなクズと話す気はない。",
    "無能な担当者しかいないのかよ。",
]
THREATS = [
    "I'm going to come down there and kill you.",
    "I know where you live, so watch your back.",
    "If this isn't fixed I will find you and hurt you.",
    "I'll burn your whole building down.",
    "今から行って殺してやるからな。",
    "帰るとき夜道に気をつけろよ。",
    "お前の店に火をつけてやるぞ。",
    "マジでぶっ殺すからな。",
]
# The categories added in v2 (MHLW customer-harassment manual), in words the corpus never used.
NEW_CATEGORY_LINES = [
    ("exposure", "I'm recording this call and putting your name all over Facebook."),
    ("exposure", "Tell me which neighbourhood you live in, I want your home address."),
    ("exposure", "お前の名前と顔、全部ネットに晒してやるからな。"),
    ("exposure", "あんたの自宅の住所、今ここで言いなさいよ。"),
    ("coercion", "Get down on your knees and beg me for forgiveness."),
    ("coercion", "I'm not hanging up until your boss drives to my house to apologize."),
    ("coercion", "今すぐ土下座して謝れって言ってるんだよ。"),
    ("coercion", "社長を連れて今日中にうちまで謝りに来い。"),
    ("discrimination", "Go back to your own country, I want a real American."),
    ("discrimination", "Put a man on the phone, women can't understand this stuff."),
    ("discrimination", "女のくせに生意気なんだよ、男に代われ。"),
    ("discrimination", "外国人なんかに分かるわけないだろ、日本人を出せ。"),
    ("sexual", "So what are you wearing right now, sweetheart?"),
    ("sexual", "Your voice is really turning me on."),
    ("sexual", "ねえ、今日は何色の下着はいてるの？"),
    ("sexual", "声かわいいね、彼氏いるの？今度二人で会おうよ。"),
    ("profanity", "This is absolutely fucking ridiculous."),
    ("profanity", "What the fuck is wrong with this stupid modem."),
    ("profanity", "マジでクソみたいなサービスだな。"),
    ("profanity", "ちくしょう、またエラーが出やがった。"),
]
NEW_CATEGORY_NEGATIVES = [
    "Could I have your name for my records, please?",
    "Who am I speaking with today?",
    "Please send the replacement to my home address.",
    "I'd appreciate an apology, honestly, this took a month.",
    "Can someone come to my house to fix the boiler?",
    "Please don't hang up, I'm still looking for the number.",
    "Do you have someone who speaks Spanish?",
    "I'm calling from abroad, so the line may be bad.",
    "The jacket I ordered is the wrong size.",
    "Oh my gosh, I forgot my password again.",
    "担当者のお名前を伺ってもよろしいですか。",
    "口コミにも書きましたが、配送が遅すぎます。",
    "一言謝っていただけると助かります。",
    "修理の方に家まで来ていただけますか。",
    "英語が話せる方はいらっしゃいますか。",
    "下着のサイズを交換したいんですが。",
    "もう、なんで繋がらないのかな。",
]
# What Whisper hands over on a bad line: no punctuation, kana for kanji, mis-heard words.
ASR_INSULTS = [
    "your a useless idiot",
    "shut up you stupid moran",
    "おまえわほんとにやくたたずだな",
    "ほんと薬ださずだよお前",
]
ASR_THREATS = [
    "i know where you leave",
    "im gonna kill ya",
    "ころすぞてめー",
    "よみちにきをつけろよ",
]
HARD_NEGATIVES = [
    "This is unacceptable. I want a full refund today.",
    "I'd like to speak to your manager, please.",
    "I've been waiting three weeks and I'm really frustrated.",
    "I'm dying to find out what happened to my parcel.",
    "This update is killing my battery life.",
    "Could you please check the status of my order?",
    "I'll call back tomorrow morning.",
    "二週間待っても届かないなんて、納得できません。",
    "責任者の方と話をさせてください。",
    "返金をお願いします。弁護士にも相談するつもりです。",
    "年末で死ぬほど忙しいんです。",
    "この商品、お店でバカ売れしてましたよ。",
    "殺虫剤の匂いがきついんです。",
    "明日の午後なら家にいます。",
    # Backchannels: a few n-grams each, so one stray abusive-looking n-gram would decide.
    "Right, thanks, that's lovely.",
    "Okay, cheers, bye now.",
    "Yes, perfect, thank you.",
    "はい、了解です、ありがとうございます。",
    "あ、そうなんですね、わかりました。",
]
# A VAD segment can hold several sentences; the abusive one must not be diluted by the rest.
LONG_ABUSIVE = [
    ("insult", "Listen, I have called you five times this week about the router. Every single "
               "time someone promises a callback that never comes. You are a complete idiot."),
    ("threat", "I have been a customer for ten years. Nobody has fixed my bill. If it is not "
               "sorted by Friday, I will find you and make you pay."),
    ("insult", "この前注文した冷蔵庫の件でお電話しました。まだ届かないし、説明もないんですよ。"
               "お前みたいな無能は辞めちまえ。"),
    ("threat", "何回電話したと思ってるんだ。もう我慢できない。今からそっちに行って殴ってやるからな。"),
]
LONG_CALM = [
    "Hi, I am calling about my internet. It has been dropping every evening since Monday. "
    "Could you send someone to check the line?",
    "先週テレビを買いました。リモコンが反応しないんです。交換していただけますか。",
]


@pytest.fixture(scope="module")
def clf() -> TextAbuseClassifier:
    return TextAbuseClassifier(default_model_path())


def flagged(clf: TextAbuseClassifier, text: str) -> set[str]:
    scores = clf.score(text)
    return {c for c, p in scores.items() if p >= clf.thresholds[c]}


def test_metadata_describes_the_model(clf):
    assert clf.categories == CATEGORIES
    assert set(clf.thresholds) == set(clf.categories)
    assert all(0.0 < t < 1.0 for t in clf.thresholds.values())
    meta = clf.metadata
    assert meta["output"]["order"] == list(clf.categories)
    assert meta["training_data"]["sha256"] == hashlib.sha256(CORPUS.read_bytes()).hexdigest(), (
        "corpus.csv changed without retraining: run models/train_text_abuse.py"
    )


def test_phrasings_are_held_out():
    with CORPUS.open(encoding="utf-8", newline="") as f:
        corpus = {normalize_text(row["text"]) for row in csv.DictReader(f)}
    ours = (INSULTS + THREATS + ASR_INSULTS + ASR_THREATS + HARD_NEGATIVES + LONG_CALM
            + [t for _, t in LONG_ABUSIVE] + [t for _, t in NEW_CATEGORY_LINES] + NEW_CATEGORY_NEGATIVES)
    assert not [t for t in ours if normalize_text(t) in corpus]


@pytest.mark.parametrize("text", INSULTS + ASR_INSULTS)
def test_insults_are_flagged(clf, text):
    assert "insult" in flagged(clf, text), clf.score(text)


@pytest.mark.parametrize("text", THREATS + ASR_THREATS)
def test_threats_are_flagged(clf, text):
    assert "threat" in flagged(clf, text), clf.score(text)


@pytest.mark.parametrize(("category", "text"), NEW_CATEGORY_LINES)
def test_exposure_coercion_discrimination_sexual_and_profanity_are_flagged(clf, category, text):
    assert category in flagged(clf, text), clf.score(text)


@pytest.mark.parametrize("text", HARD_NEGATIVES + NEW_CATEGORY_NEGATIVES)
def test_complaints_and_benign_trigger_words_are_not_flagged(clf, text):
    assert flagged(clf, text) == set(), clf.score(text)


@pytest.mark.parametrize(("category", "text"), LONG_ABUSIVE)
def test_abuse_inside_a_long_utterance_is_flagged(clf, category, text):
    assert category in flagged(clf, text), clf.score(text)


@pytest.mark.parametrize("text", LONG_CALM)
def test_long_calm_utterances_are_not_flagged(clf, text):
    assert flagged(clf, text) == set(), clf.score(text)


def test_scoring_units_are_the_whole_and_each_sentence():
    assert scoring_units("You idiot.") == [" you idiot "]
    assert scoring_units("Hello. It costs 3.5 dollars! ふざけるな。") == [
        " hello it costs 3 5 dollars ふざけるな ", " hello ", " it costs 3 5 dollars ", " ふざけるな "]
    assert scoring_units(" 。 ") == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "。。。", "...!?"])
def test_nothing_to_score_is_all_zero(clf, text):
    assert clf.score(text) == dict.fromkeys(CATEGORIES, 0.0)


def test_batch_equals_single(clf):
    texts = [INSULTS[0], "", THREATS[4], HARD_NEGATIVES[-1], ASR_INSULTS[2], "   "]
    batch = clf.score_batch(texts)
    assert len(batch) == len(texts)
    for text, scores in zip(texts, batch, strict=True):
        single = clf.score(text)
        assert scores.keys() == single.keys()
        assert all(abs(scores[c] - single[c]) < 1e-6 for c in single)
    assert clf.score_batch([]) == []


def test_normalisation_folds_asr_surface_variation():
    assert normalize_text("バカ") == normalize_text("ばか") == normalize_text("ﾊﾞｶ")
    assert normalize_text("You're an IDIOT!!!") == normalize_text("youre an idiot")
    assert normalize_text("殺す ぞ、 てめえ。") == normalize_text("殺すぞてめえ")
    assert normalize_text(" \t ") == ""


# (precision, recall) floors per category, about 0.05-0.1 under the built model's figures
# (insult 0.93/0.78, threat 0.92/0.68, exposure 0.78/0.78, coercion 0.94/0.66, discrimination
# 0.92/0.62, sexual 0.90/0.48, profanity 0.89/0.84).
HELD_OUT_FLOOR = {"insult": (0.85, 0.7), "threat": (0.85, 0.6), "exposure": (0.7, 0.7),
                  "coercion": (0.85, 0.57), "discrimination": (0.85, 0.53), "sexual": (0.8, 0.4),
                  "profanity": (0.8, 0.75)}


def test_held_out_split_quality(clf):
    """Regression floor on the corpus' test split (rows training never saw), well below the
    figures in models/EVALUATION.md so that only a real regression trips it."""
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    scores = clf.score_batch([r["text"] for r in rows])
    for cat in clf.categories:
        y = np.array([r[cat] == "1" for r in rows])
        pred = np.array([s[cat] >= clf.thresholds[cat] for s in scores])
        precision = (pred & y).sum() / pred.sum()
        recall = (pred & y).sum() / y.sum()
        floor_p, floor_r = HELD_OUT_FLOOR[cat]
        assert precision >= floor_p and recall >= floor_r, (cat, precision, recall)
    calm = [s for r, s in zip(rows, scores, strict=True) if r["kind"] in ("complaint", "ordinary")]
    false_alarms = sum(any(s[c] >= clf.thresholds[c] for c in clf.categories) for s in calm)
    assert false_alarms / len(calm) <= 0.05


# Hand-written natural sets (models/data/text_abuse_v2/natural_*.csv, provenance in their
# headers): the check sets were never used for any choice, so these are honest regression bounds,
# documented in models/EVALUATION.md (section 2).
NATURAL_DIR = CORPUS.parent
NATURAL_FALSE_ALARM_MAX = {"all": 0.05, "en": 0.07, "ja": 0.05}  # built model: 0.030 / 0.038 / 0.024
NATURAL_ABUSE_RECALL_MIN = {"all": 0.82, "en": 0.85, "ja": 0.75}  # built model: 0.869 / 0.929 / 0.810


def read_natural(name: str) -> list[dict]:
    with (NATURAL_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_natural_sets_are_disjoint_from_the_corpus_and_each_other():
    with CORPUS.open(encoding="utf-8", newline="") as f:
        corpus = {normalize_text(row["text"]) for row in csv.DictReader(f)}
    seen: set[str] = set()
    sizes = {}
    for name in ("natural_negatives_dev.csv", "natural_negatives_check.csv", "natural_abuse_check.csv"):
        rows = read_natural(name)
        texts = [normalize_text(r["text"]) for r in rows]
        assert not [t for t in texts if t in corpus], name
        assert not seen & set(texts) and len(set(texts)) == len(texts), name
        seen |= set(texts)
        sizes[name] = {lang: sum(r["lang"] == lang for r in rows) for lang in ("en", "ja")}
    assert min(sizes["natural_negatives_dev.csv"].values()) >= 200
    assert min(sizes["natural_negatives_check.csv"].values()) >= 150
    assert min(sizes["natural_abuse_check.csv"].values()) >= 40


def alert_rates(clf, rows: list[dict]) -> dict[str, float]:
    """Share of rows over any category's threshold: overall ("all") and per language."""
    scores = clf.score_batch([r["text"] for r in rows])
    fired = np.array([any(s[c] >= clf.thresholds[c] for c in clf.categories) for s in scores])
    langs = np.array([r["lang"] for r in rows])
    return {"all": fired.mean(), **{lang: fired[langs == lang].mean() for lang in ("en", "ja")}}


def test_natural_check_negatives_rarely_raise_an_alert(clf):
    rates = alert_rates(clf, read_natural("natural_negatives_check.csv"))
    for lang, bound in NATURAL_FALSE_ALARM_MAX.items():
        assert rates[lang] <= bound, (lang, rates[lang])


def test_natural_check_abuse_is_caught(clf):
    rates = alert_rates(clf, read_natural("natural_abuse_check.csv"))
    for lang, bound in NATURAL_ABUSE_RECALL_MIN.items():
        assert rates[lang] >= bound, (lang, rates[lang])


# The commonest lines on any call, what Whisper writes for line noise, and the openings an
# interim transcript gives (it alerts from three words): before the model saw them, "Thank you."
# scored insult 0.64, "You." 1.00 and "I will be" threat 0.97, a false alert on most calls.
@pytest.mark.parametrize("text", ["Thank you.", "You.", "Thank you, bye.", "See you.", "Thanks so much, bye bye.",
                                  "Yes, you did, thank you.", "I will be", "I'll be home", "will be delivered",
                                  "you did", "you will see", "are you", "I hear you", "I will be back tomorrow",
                                  "ありがとうございます。", "もしもし、聞こえますか。"])
def test_courtesies_and_sentence_openings_stay_quiet(clf, text):
    assert flagged(clf, text) == set(), clf.score(text)


@pytest.mark.parametrize(("text", "category"), [("You idiot.", "insult"), ("Shut up!", "insult"),
                                                ("I'll kill you.", "threat"), ("I will find you.", "threat"),
                                                ("Watch your back.", "threat"), ("Screw you.", "insult")])
def test_short_abuse_still_alerts_where_the_openings_do_not(clf, text, category):
    assert category in flagged(clf, text), clf.score(text)


@pytest.mark.parametrize("text", ["Of course, thank you so much.", "What time do you close today?",
                                  "Can I speak to someone else?", "You said that last week too.",
                                  "I did."])
def test_reported_false_alerts_stay_quiet(clf, text):
    assert flagged(clf, text) == set(), clf.score(text)
