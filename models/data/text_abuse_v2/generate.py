#!/usr/bin/env python3
"""Generate the text_abuse_v2 corpus (corpus.csv next to this file) from templates.

Run from the repository root (deterministic: byte-identical output on every run)::

    .venv/bin/python models/data/text_abuse_v2/generate.py
    .venv/bin/python models/data/text_abuse_v2/generate.py --jtd PATH/subset.csv

``models/train_text_abuse.py`` runs this first, so a model rebuild regenerates the data too.
Needs pyopenjtalk-plus (the ``train`` extra) for whole-sentence kana readings.

What it writes: short call-centre utterances in English and Japanese, multi-label over
``insult`` (侮辱・暴言) and ``threat`` (脅迫), composed from the hand-written lists below, and since v2
``exposure``, ``coercion``, ``discrimination``, ``sexual`` and ``profanity`` from the lists in
``categories.py`` (:func:`build_new_categories`; profanity is also labelled by a word list wherever
strong swearing occurs, :func:`label_profanity`):

* abusive *lexemes* (an insult noun, adjective or imperative; a threat clause) placed in
  *frames* (carrier sentences), with fillers (um / あの / ちょっと), addressees (お前 / あんた),
  sentence-final particles and punctuation sampled per row;
* hard negatives placed in the same kind of frames: legitimate complaints and escalations
  (refund, manager, lawyer, 責任者, 弁護士, 消費者センター), trigger words in benign use
  (killing my battery, 殺虫剤, バカ売れ, 死ぬほど忙しい), ordinary call talk, agents' replies
  that name the abuse (脅迫と受け取れる発言は…), plans that share "I'll ..." / 〜からな with
  threats ("I'll be home after six", 明日また電話するからな), slot-filled everyday requests
  ("can you update my plan tomorrow", 注文を変更したいんですが), and friendly fills of every
  abusive frame ("you're a lifesaver", 「今度やったら解約します」) so that a frame alone is
  never evidence;
* abuse inside otherwise ordinary sentences (a complaint, request or benign-trigger clause
  plus an insult or threat), so benign words cannot outvote an abusive one;
* courtesies, what Whisper writes for noise ("Thank you.", "you", "Bye.", ありがとうございます) and
  openings of ordinary sentences ("I will be", "you did"), bare and with fillers, and the first
  words of a quarter of the English negatives, as negatives (:func:`build_courtesies`,
  :func:`fragments_of`): what interim transcripts and clipped segments look like;
* for every composed sentence one ASR-like variant (punctuation lost, kana for kanji, Whisper
  mis-hearings such as 役立たず→薬ださず, small misspellings, "f***" masking, stutters);
* rows of the japanese-toxic-dataset (LINE, Apache-2.0): majority "Not Toxic" rows as extra
  negatives; majority-toxic rows only as an unlabelled sanity set (split ``sanity``, labels -1),
  because their toxicity is general web toxicity (obscenity, discrimination, politics) that does
  not map onto insult/threat aimed at an agent.

Split (column ``split``): every row carries the keys of what it was built from (lexemes, frame,
JTD id). Each key pool is ordered by SHA-256 of the key and cut 15% test / 10% val / rest train;
a row goes to test if any of its keys is a test key, else to val if any is a val key. So test
rows use a lexeme or a frame that training never saw (column ``holdout`` says which), and an
ASR variant always lands in its source sentence's split. Lexemes that the design brief names as
the defining examples (役立たず, 殺すぞ, "useless idiot", "watch your back", 納得できません, ...)
are pinned to train so the shipped model knows them. Finally any val/test row whose normalised
text also occurs in train is dropped, as are rows whose text matches an utterance of the
end-to-end test calls under tests/fixtures/calls/ (they must stay unseen).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from stream_server.classifiers.text import normalize_text

SEED = 20240601
CORPUS = HERE / "corpus.csv"
DEFAULT_JTD = REPO.parent / "shared" / "data" / "japanese-toxic-dataset" / "subset.csv"
FIXTURES = REPO / "tests" / "fixtures" / "calls"
TEST_FRACTION = 0.15
VAL_FRACTION = 0.10
CATEGORIES = ("insult", "threat", "exposure", "coercion", "discrimination", "sexual", "profanity")
COLUMNS = ["id", "split", "holdout", "lang", *CATEGORIES, "kind", "variant", "source", "keys", "text"]

# --------------------------------------------------------------------------------------------
# English lists
# --------------------------------------------------------------------------------------------

EN_FILLERS = ["", "", "", "um", "uh", "um,", "well", "look", "listen", "you know", "so",
              "okay", "hey", "honestly", "I mean", "right", "oh", "yeah", "uh huh", "man"]
EN_TAILS = ["", "", "", "okay", "you hear me", "seriously", "right now", "I swear", "got it",
            "alright", "you know", "honestly"]

# (noun, article). Article "" = used without one ("you're trash").
EN_INSULT_NOUNS = [
    ("idiot", "an"), ("useless idiot", "a"), ("stupid moron", "a"), ("moron", "a"),
    ("complete idiot", "a"), ("total moron", "a"), ("imbecile", "an"), ("halfwit", "a"),
    ("dimwit", "a"), ("nitwit", "a"), ("numbskull", "a"), ("dumbass", "a"), ("jackass", "a"),
    ("fool", "a"), ("incompetent fool", "an"), ("pathetic loser", "a"), ("loser", "a"),
    ("clown", "a"), ("useless piece of garbage", "a"), ("piece of shit", "a"),
    ("piece of crap", "a"), ("worthless piece of trash", "a"), ("waste of space", "a"),
    ("waste of oxygen", "a"), ("scumbag", "a"), ("lowlife", "a"), ("parasite", "a"),
    ("asshole", "an"), ("bitch", "a"), ("retard", "a"), ("brainless idiot", "a"),
    ("brain-dead moron", "a"), ("bloody idiot", "a"), ("fucking idiot", "a"), ("cretin", "a"),
    ("buffoon", "a"), ("bozo", "a"), ("dickhead", "a"), ("prick", "a"), ("twat", "a"),
    ("muppet", "a"), ("good-for-nothing", "a"), ("useless lump", "a"), ("dope", "a"),
    ("incompetent clown", "an"), ("trash", ""), ("garbage", ""), ("scum", ""),
    ("joke of a person", "a"), ("stupid cow", "a"), ("ignorant pig", "an"), ("pig", "a"),
    ("monkey", "a"), ("donkey", "a"), ("freak", "a"), ("worm", "a"), ("rat", "a"), ("snake", "a"),
    ("slob", "a"), ("old bat", "an"), ("sad little man", "a"), ("little shit", "a"),
    ("airhead", "an"), ("blockhead", "a"), ("knucklehead", "a"), ("dunce", "a"),
    ("simpleton", "a"), ("nincompoop", "a"), ("pinhead", "a"), ("tosser", "a"), ("wanker", "a"),
    ("git", "a"), ("plonker", "a"), ("douchebag", "a"), ("jerk", "a"), ("creep", "a"),
    ("disgrace", "a"), ("useless twit", "a"), ("brainless puppet", "a"),
]
EN_INSULT_ADJS = [
    "useless", "stupid", "incompetent", "pathetic", "brain-dead", "worthless", "clueless",
    "dumb", "thick", "retarded", "moronic", "idiotic", "hopeless", "dense", "spineless",
    "gutless", "dim", "braindead and useless", "an embarrassment", "a disgrace",
    "totally useless", "so fucking stupid",
]
EN_INSULT_IMPERATIVES = [
    "shut up", "shut your mouth", "shut the hell up", "shut your stupid mouth", "go to hell",
    "drop dead", "go die", "screw you", "fuck you", "fuck off", "get lost", "piss off",
    "go fuck yourself", "eat shit", "get a brain", "go jump off a bridge", "kill yourself",
    "nobody asked you", "you make me sick", "I hope you die", "get a real job you can do",
    "crawl back under your rock", "go choke", "stop breathing my air",
]
# Friendly or neutral fills for the same frames: the frame alone must not be evidence.
EN_KIND_NOUNS = [
    ("lifesaver", "a"), ("star", "a"), ("genius", "a"), ("legend", "a"), ("angel", "an"),
    ("great help", "a"), ("sweetheart", "a"), ("good listener", "a"), ("real pro", "a"),
    ("champ", "a"), ("hero", "a"), ("professional", "a"), ("new agent", "a"),
    ("real person", "a"), ("human", "a"), ("supervisor", "a"), ("good sport", "a"),
    ("sweetie", "a"), ("lovely person", "a"), ("godsend", "a"), ("wizard", "a"),
    ("nice guy", "a"), ("smart cookie", "a"), ("team player", "a"), ("trainee", "a"),
    ("customer service agent", "a"), ("manager", "a"), ("robot", "a"), ("machine", "a"),
    ("gem", "a"),
]
EN_KIND_ADJS = [
    "helpful", "kind", "patient", "quick", "amazing", "right", "very nice", "brilliant",
    "wonderful", "so polite", "new here", "busy today", "on the right track", "very clear",
    "fast", "sweet", "efficient", "honest", "reasonable", "friendly", "sure about that",
    "allowed to do that", "the only one who answered", "a great help", "a star",
]
EN_KIND_IMPERATIVES = [
    "hold on", "wait a second", "go ahead", "take your time", "carry on", "hang on",
    "let me think", "slow down please", "say that again", "give me a minute", "check again",
    "look it up", "speak up a bit", "read that back to me", "calm down a second",
    "hear me out", "help me out here", "tell me the truth", "put me through",
    "cancel the order", "send it again", "pay attention to the address",
]

EN_NOUN_FRAMES = {
    "n01": "you are {aN}", "n02": "you're {aN}", "n03": "you {N}", "n04": "what {aN}",
    "n05": "you're such {aN}", "n06": "listen to me you {N}", "n07": "I'm talking to {aN}",
    "n08": "are you {aN} or what", "n09": "only {aN} would do that",
    "n10": "put someone on the phone who isn't {aN}", "n11": "you absolute {N}",
    "n12": "you're nothing but {aN}", "n13": "I can't believe I'm dealing with {aN}",
    "n14": "oh my god you are {aN}", "n15": "hey {N}, fix my account",
    "n16": "thanks for nothing, {N}", "n17": "you're {aN}, you know that",
    "n18": "why did they hire {aN} like you", "n19": "you're the biggest {N} I've ever talked to",
    "n20": "honestly you are {aN}", "n21": "what kind of {N} are you",
    "n22": "they put {aN} on the phone",
}
EN_KIND_NOUN_FRAMES = sorted(EN_NOUN_FRAMES)
EN_ADJ_FRAMES = {
    "a01": "you're {A}", "a02": "you are so {A}", "a03": "how can you be this {A}",
    "a04": "are you {A} or something", "a05": "you people are {A}", "a06": "you're completely {A}",
    "a07": "god you're {A}", "a08": "you are the most {A} person I have ever spoken to",
    "a09": "I've never met anyone so {A}", "a10": "wow, you're really {A}",
    "a11": "everyone there is {A}",
}
EN_KIND_ADJ_FRAMES = sorted(EN_ADJ_FRAMES)
EN_ADJ_NOUN_FRAMES = {"an1": "you {A} {N}", "an2": "you're {a} {A} {N}", "an3": "what {a} {A} {N}"}
EN_IMP_FRAMES = {
    "i01": "{I}", "i02": "just {I}", "i03": "oh {I}", "i04": "you know what, {I}",
    "i05": "{I}, seriously", "i06": "{I}. I'm done with you", "i07": "ugh, {I}",
    "i08": "I said {I}",
}
EN_KIND_IMP_FRAMES = sorted(EN_IMP_FRAMES)

EN_THREATS = [
    "I will kill you", "I'm going to kill you", "I'll kill you", "I'm gonna kill you",
    "I'll fucking kill you", "watch your back", "you'd better watch your back",
    "I know where you live", "I know where you work", "I'll find you", "I'm going to find you",
    "I will hunt you down", "you're dead", "you're a dead man", "you're dead meat",
    "I'll burn your office down", "I'm going to burn the place down",
    "I'll set your store on fire", "I'll break your neck", "I'll break your legs",
    "I'll smash your face in", "I'm going to beat you up", "I'll beat the crap out of you",
    "I'll hurt you", "I'll make you suffer", "I'll be waiting for you outside",
    "I'll wait for you after your shift", "I'm coming down there to deal with you",
    "I'll shoot you", "I'm bringing a gun", "I'll blow the place up",
    "something bad is going to happen to you", "sleep with one eye open",
    "your family won't be safe", "I'll strangle you", "I'll slit your throat",
    "I'll punch your lights out", "I'll come after you", "you're going to pay for this",
    "you won't live to see tomorrow", "I'll stab you", "I'm going to make your life hell",
    "I'll follow you home", "I've got your name and I'm coming for you",
    "I'll rip your head off", "you're finished", "I'll end you", "I'll destroy you",
    "you'd better run", "I'll put you in the hospital", "I'll kick your teeth in",
    "I'll make you disappear", "you'll be sorry", "I'll teach you a lesson you won't forget",
    "I'll wring your neck", "I'll beat you to death", "I'm going to mess you up",
    "you don't know who you're messing with", "I'll torch your car",
    "I know what car you drive", "I'll be waiting in the parking lot",
]
# Legitimate escalations that fit the same conditional frames.
EN_ESCALATIONS = [
    "I'll cancel my contract", "I'm going to cancel my account", "I'll call your head office",
    "I'll file a complaint", "I'll report this to consumer protection",
    "I'll talk to my lawyer", "I'll see you in court", "I'm taking my business elsewhere",
    "I'll leave a bad review", "I'll dispute the charge with my bank",
    "I'll post about this online", "I'll contact the ombudsman",
    "I'll never use your company again", "I'll ask for a full refund",
    "I'll call back tomorrow", "I'll go to the store in person", "I'll escalate this",
    "I'm going to write to the CEO", "I'll switch to another provider",
    "I'll report you to your supervisor", "I'll stop paying the bill",
    "I'll come to the branch on Monday", "I'll write a letter to the newspaper",
    "I'm going to call the police about the fraud on my card", "I'll hang up and call again",
    "I'll make a formal complaint in writing", "I'm calling the better business bureau",
    "I'll be calling every day until it's fixed", "I'll tell all my friends to avoid you",
    "I'm going to return everything", "I'll demand a full investigation",
    "I'll close all my accounts", "I'll take it to small claims court",
    "I'll be asking for compensation", "I'm never going to recommend you",
    "I'll want a manager on the line",
]
EN_THREAT_FRAMES = {
    "t01": "{T}", "t02": "{T}, I swear", "t03": "I swear to god {T}",
    "t04": "if you don't fix this {T}", "t05": "one more word and {T}",
    "t06": "keep it up and {T}", "t07": "mark my words, {T}", "t08": "{T}, I'm not joking",
    "t09": "do that again and {T}", "t10": "you hear me? {T}", "t11": "I'm telling you, {T}",
    "t12": "hang up on me again and {T}", "t13": "{T}. remember that",
    "t14": "if my money isn't back by friday {T}", "t15": "you know what, {T}",
    "t16": "I promise you {T}",
}
EN_ESCALATION_FRAMES = sorted(EN_THREAT_FRAMES)
EN_COMBO_FRAMES = {"c01": "{T}, you {N}", "c02": "you {N}, {T}", "c03": "listen you {N}, {T}"}
EN_COMPLAINT_INSULT_FRAMES = {"ci1": "{C}, you {N}", "ci2": "{C}. you're {aN}", "ci3": "{C}. {I}",
                              "ci4": "you {N}, {C}"}
EN_COMPLAINT_THREAT_FRAMES = {"ct1": "{C}. {T}", "ct2": "{C}, and {T}", "ct3": "{T}. {C}"}

EN_COMPLAINTS = [
    "this is unacceptable, I want a refund", "I want to speak to your manager",
    "I want to speak to a supervisor", "this is unacceptable", "this is ridiculous",
    "I've been on hold for over an hour", "I'm extremely disappointed",
    "your service is terrible", "this is the worst service I've ever had",
    "I'm very unhappy with this", "I've called three times already",
    "nobody ever calls me back", "you charged me twice", "I was overcharged again",
    "I never agreed to this fee", "I want this fixed today", "I want compensation for this",
    "I'm going to cancel my subscription", "I'm going to file a formal complaint",
    "I'll report this to consumer protection", "I'm going to talk to my lawyer",
    "I'll take my business elsewhere", "I'm not paying for this",
    "you people keep getting it wrong", "I'm fed up with this", "I'm really frustrated",
    "I'm so angry right now", "this is a complete joke", "how is this still not fixed",
    "you promised it would be fixed last week", "that's not what I was told",
    "I demand an explanation", "I need a real answer", "give me your name and employee number",
    "I'm recording this call", "I want this in writing", "why is this so hard",
    "I've wasted my whole afternoon on this", "I expect better from a company like yours",
    "this has been going on for weeks", "the technician never showed up",
    "the package was left in the rain", "my internet has been down for five days",
    "I'm paying for a service I'm not getting", "I want my money back",
    "this is the third time I'm explaining this", "can you please just listen to me",
    "stop reading from a script", "don't put me on hold again", "let me finish",
    "I'm not happy at all", "escalate this please", "I want to close my account",
    "this is absolutely ridiculous", "I'm really disappointed in your company",
    "I can't believe this happened again", "I'm losing patience here",
    "you're not listening to me", "you're not helping me", "you're wrong, check again",
    "I demand a refund right now", "this is a disgrace of a service",
    "your company is a joke", "this is daylight robbery", "I'm sick and tired of waiting",
    "what the hell is going on with my bill", "this is bullshit, I paid on time",
    "I'm going to lose my mind waiting", "this is driving me crazy",
    "I'm not shouting at you, I'm just upset", "I'll be reporting this to the regulator",
]
EN_BENIGN_TRIGGERS = [
    "the app is killing my battery", "this update is killing my phone",
    "the heat is killing me", "my feet are killing me", "I'm dying to know when it ships",
    "I'm dying to get my order", "my phone died halfway through the call",
    "the battery is completely dead", "the line went dead", "the screen is dead",
    "I had to kill the app and restart it", "the router keeps killing the connection",
    "you guys killed it with the new design", "that deal is a killer",
    "I'm dead tired after work", "I almost died laughing",
    "the deadline for payment is tomorrow", "shoot me an email with the details",
    "can you shoot me a text", "I know where your store is, I'll drop it off tomorrow",
    "I know where the office is", "watch out, the second payment is due friday",
    "the code is on the back of the card", "I'll watch the video you sent",
    "I feel so stupid, I forgot my password", "sorry, stupid question, where is the account number",
    "my stupid phone won't turn on", "this stupid printer keeps jamming",
    "the manual is useless", "the website is useless on mobile",
    "this charger is a piece of junk", "I'm not an idiot, I already restarted it",
    "my brother called me an idiot for buying this", "the spray kills ants but not roaches",
    "I need something to kill the weeds", "the fire alarm keeps going off",
    "the stove won't light", "I'd kill for a faster connection",
    "break down the charges for me", "my screen is broken", "I hurt my back lifting the box",
    "the box was smashed when it arrived", "the package got destroyed in transit",
    "the gas burner won't catch fire", "I burned the toast when the power came back",
    "my son is a little monster today", "the knife set arrived without the block",
    "I want to return the kitchen knife", "I'm going to hunt for the receipt",
    "I'll find the order number", "you're a dead ringer for my cousin",
    "I was told to watch my back account for the refund", "I live at the same address",
    "where do you live, I mean which branch are you in", "sorry, the dog is going crazy",
    "the game was a total massacre", "the movie was about a hitman",
    "our team got destroyed last night", "I'd like insurance against fire and theft",
    "how do I kill a stuck download", "the trial version is dead simple",
]
EN_ORDINARY = [
    "hello, I'm calling about my bill", "hi, can you hear me", "yes, that's correct",
    "my account number is four five six seven", "could you spell that for me",
    "thank you so much for your help", "okay, I'll hold", "sorry, the line is breaking up",
    "I moved to a new address last month", "I'd like to upgrade my plan",
    "what are your opening hours", "can I pay with a credit card",
    "the order number is in the email", "when will the technician arrive",
    "is there a cheaper option", "I need to reset my password",
    "my date of birth is the fifth of march", "yes, that's my email address",
    "no, that's everything, thanks", "have a nice day", "sorry, could you repeat that",
    "great, that works for me", "let me get a pen", "hold on, let me find the letter",
    "it's for my mother's account", "I'm calling on behalf of my husband",
    "I got a text message about a delivery", "the tracking says it's in the depot",
    "can you send me a confirmation email", "I'd like to return this item",
    "the size is too small", "what's the warranty on this", "do you deliver on weekends",
    "I'll be home after six", "my phone number ends in two three",
    "can I change the delivery date", "thanks, that's really helpful", "perfect, thank you",
    "okay, bye", "I'm not sure, let me check", "it's the blue one, model two hundred",
    "I bought it at the shop downtown", "do I need the receipt", "is the sale still on",
    "I'd like to add my wife to the account", "can I get a paper bill instead",
    "the last four digits are nine one nine one", "that's fine, go ahead",
    "I'm driving, can you call me back later", "I didn't catch your name",
]
# Ordinary requests composed from slots, to anchor the negative side with everyday call words.
EN_ORD_FRAMES = {
    "o1": "I'd like to {v} my {t}", "o2": "can you {v} my {t} {w}", "o3": "I need to {v} the {t}",
    "o4": "my {t} {p}", "o5": "when will my {t} {e}", "o6": "is it possible to {v} the {t} {w}",
    "o7": "I was told my {t} would {e} {w}", "o8": "how do I {v} my {t}",
}
EN_ORD_SLOTS = {
    "v": ["change", "cancel", "update", "check", "upgrade", "return", "renew", "pause", "transfer",
          "track", "activate", "reset", "replace", "move"],
    "t": ["order", "plan", "subscription", "address", "payment method", "password", "contract",
          "delivery", "appointment", "account", "phone number", "router", "card", "bill",
          "insurance policy", "booking", "fridge", "washing machine", "laptop", "parcel"],
    "p": ["isn't working", "stopped working", "keeps disconnecting", "was charged twice",
          "arrived damaged", "hasn't arrived", "is showing an error", "won't turn on",
          "is making a weird noise", "got cancelled by mistake", "is on the wrong name"],
    "e": ["arrive", "be ready", "be activated", "be refunded", "ship", "be fixed", "be delivered"],
    "w": ["today", "tomorrow", "next week", "on Monday", "before the weekend", "this afternoon",
          "by friday", "as soon as possible"],
}
JA_ORD_FRAMES = {
    "jo1": "{t}を{v}たいんですが", "jo2": "{t}が{p}", "jo3": "{t}はいつ{e}か", "jo4": "{w}{t}を{v}てもらえますか",
    "jo5": "{t}の件なんですけど、{w}{v}たいです", "jo6": "{t}って{w}{e}か",
}
JA_ORD_SLOTS = {
    "t": ["注文", "プラン", "契約", "住所", "支払い方法", "パスワード", "配達", "予約", "アカウント",
          "電話番号", "ルーター", "カード", "請求書", "保険", "冷蔵庫", "洗濯機", "テレビ", "エアコン",
          "荷物", "修理"],
    "v": ["変更し", "解約し", "確認し", "更新し", "キャンセルし", "返品し", "再発行し", "止め", "移し",
          "交換し", "延長し"],
    "p": ["動かないんです", "壊れてしまって", "届いていません", "エラーが出ます", "二重に引き落とされています",
          "変な音がします", "つながりません", "電源が入りません", "間違って届きました"],
    "e": ["届きます", "使えるようになります", "返金されます", "発送されます", "直ります", "終わります"],
    "w": ["今日中に", "明日", "来週", "月曜日に", "週末までに", "午後に", "なるべく早く"],
}
ORD_PER_FRAME = 45
HOURS_PER_FRAME = 20

# Everyday call talk in the spoken register (v1.1): opening hours, billing, delivery, accounts,
# thanks, and everyday words that sit next to abusive n-grams ("close", "shut", "cut off",
# "dead", "kill the process", "shoot me an email", "beat the deadline"). Hand-written here; the
# natural dev/check sets (natural_*.csv) are separate sentences and are never generated.
EN_EVERYDAY = [
    "of course, thank you so much", "thank you so much, that's great", "of course, no problem at all",
    "oh, of course, sorry", "thank you so much for waiting", "of course you can",
    "can I talk to somebody else about this", "could I speak to another agent",
    "you told me that yesterday as well", "you said the same thing on Monday",
    "that's what you said last time", "you mentioned that in your email",
    "I'd like to close the account in my son's name", "please close my old savings account",
    "can you close the ticket now", "I want to close down the business account",
    "the connection keeps cutting off", "my phone got cut off", "they cut off my water by mistake",
    "we were cut off earlier", "the gas was cut off this morning",
    "the line is dead again", "the phone line has been dead for two days", "the socket is dead",
    "you need to kill the process and start it again", "the engineer killed the process",
    "just shoot me an email when it's done", "shoot me a message with the tracking link",
    "I'm trying to beat the deadline for the tax return", "we need to beat the deadline",
    "is the outlet shut on Sundays", "the branch was shut when I got there",
    "the shop closes at half five, doesn't it", "you closed my ticket without fixing it",
    "what's this charge on my bill", "why is my bill so high this month", "I'd like a copy of my bill",
    "where's my delivery", "the delivery is late again", "the courier says he can't find the house",
    "can you leave it with my neighbour", "I wasn't in when they came",
    "I'd like to speak to somebody about a refund", "is my refund on its way",
    "I'll hold, no problem", "let me just check my emails", "sorry, I was miles away",
    "can you repeat the last bit", "I'm not sure I follow", "what do you mean by that",
    "how long will that take", "is there a quicker way", "that sounds a bit complicated",
    "I did, yes, twice", "I did that already", "I did try that", "yes I did, this morning",
    "you know what, never mind", "honestly, forget it, it's fine", "never mind, I found it",
    "you're very welcome", "you've been really kind", "that's so kind of you",
    "can you do me a favour and check the address", "I'll be honest with you, I'm confused",
    "I'm sorry, I'm hopeless with computers", "my memory is terrible, sorry",
    "I'm such a scatterbrain today", "silly me, it's the other card",
    "the last guy was really helpful", "the lady yesterday sorted it in five minutes",
    "nobody ever picks up at the branch", "I've sent three emails and got no reply",
    "is anyone actually reading these emails", "this has taken all morning",
    "I'm at my wits' end", "it's been a nightmare, honestly", "I'm really stressed about it",
    "what a palaver", "for crying out loud, it's still not working", "oh for heaven's sake",
    "damn, I left the card upstairs", "bloody hell, that's expensive", "what the heck is this fee",
    "this is a joke, it's broken again", "you're joking, another week",
    "you guys are killing me with these prices", "I'd murder a cup of tea right now",
    "I'm going to lose it if it cuts out again", "I'm not having a go at you",
    # Broad everyday vocabulary, so that an unfamiliar word is not read through the few
    # n-grams it shares with an abusive lexeme.
    "is there a student discount", "do you offer a loyalty discount", "my daughter's at university",
    "I'm a pensioner on a fixed income", "could you slow down a little", "my English is not so good",
    "sorry, you broke up there", "the signal here is patchy", "could you spell the street name",
    "is that double l or single", "it's Smith with a y", "my surname is hyphenated",
    "the parcel is at the sorting office", "can I pick it up from the collection point",
    "who handles the installation", "the seal on the door has perished", "the hinge snapped",
    "the dishwasher won't drain", "the kettle trips the fuse", "the microwave sparks",
    "the vacuum cleaner has lost suction", "the tumble dryer smells of burning rubber",
    "the boiler pressure keeps dropping", "the thermostat shows the wrong temperature",
    "the smart meter has gone blank", "the top-up didn't go through", "my contactless card was declined",
    "the cash machine swallowed my card", "I'd like a new debit card", "I need a statement for my mortgage",
    "can you freeze my card", "I'm travelling to Spain next week", "will my phone work abroad",
    "the flight was cancelled", "the hotel booking shows the wrong dates", "the seat reservation disappeared",
    "my prescription hasn't arrived", "the appointment letter came after the appointment",
    "the council tax band looks wrong", "the bin collection was missed", "there's a leak under the sink",
    "the landlord says it's your responsibility", "the plumber is coming on Thursday",
    "somebody phoned claiming to be from the bank", "I think it was a phishing email",
    "the voucher code says expired", "the gift card balance is zero", "the promo code didn't apply",
    "my pin doesn't work", "I forgot my username", "the captcha won't load",
    "the confirmation number starts with a letter", "the serial number is on the sticker",
    "the model number is on the back", "the warranty runs out in June", "the receipt is in my email",
    "my partner is on the call with me", "my carer usually rings for me", "I'm hard of hearing",
    "I'm calling from my work phone", "please use my mobile number instead", "text is better than calling",
    "I'm free any time after lunch", "mornings are difficult for me", "I'm on night shifts this week",
    "whoever picks up can take it", "the porter can sign for it", "leave it at reception",
    "that's a relief, thank you", "brilliant, you've sorted it", "fab, thanks a million",
]
EN_HOURS_FRAMES = {
    "h1": "what time do you {oc} {when}", "h2": "are you {open} {when}", "h3": "when does the {place} {oc} {when}",
    "h4": "how late is the {place} open {when}", "h5": "what are your {hours} {when}",
    "h6": "is the {place} {open} {when}", "h7": "until what time can I call {when}",
}
EN_HOURS_SLOTS = {
    "oc": ["close", "open", "shut", "open up", "finish", "close up", "stop taking calls"],
    "open": ["open", "closed", "shut", "still open", "open late"],
    "when": ["today", "tonight", "tomorrow", "on Sundays", "on Saturday", "this weekend",
             "over Christmas", "on bank holidays", "on Good Friday", "in the evening", "at lunchtime",
             "next Monday"],
    "place": ["store", "shop", "branch", "office", "call centre", "helpline", "depot", "showroom"],
    "hours": ["opening hours", "closing times", "opening times", "hours", "phone hours"],
}
JA_EVERYDAY = [
    "もちろんです、本当にありがとうございます", "ありがとうございます、とても助かります",
    "他の方に代わってもらえますか", "別の担当の方とお話しできますか",
    "昨日もそう言われましたよ", "先月もそうおっしゃってましたよね", "メールにもそう書いてありました",
    "息子名義の口座を閉じたいんです", "古いアカウントを削除してください", "法人の契約を終わらせたいんです",
    "ネットがしょっちゅう切れるんです", "途中で電話が切れてしまって", "水道を間違って止められました",
    "さっき通話が切れちゃいました", "電話回線が二日前から死んでるんです", "このコンセントは死んでますね",
    "アプリを強制終了してからもう一回開いてください", "詳細をメールで送っていただけますか",
    "締め切りに間に合わせないといけないんです", "日曜日はお店お休みですか",
    "行ったらお店が閉まってたんですよ", "直ってないのに問い合わせを閉じられたんです",
    "請求のこの項目は何ですか", "今月の請求がなんでこんなに高いんですか", "請求書の控えがほしいんですが",
    "荷物はどこにありますか", "また配達が遅れてるんですけど", "配達員さんが家を見つけられないそうで",
    "お隣さんに預けてもらえますか", "来たとき留守にしてました", "返金の件で相談したいんですが",
    "返金の手続きって進んでますか", "はい、待ちます", "メールを確認しますね", "すみません、ぼーっとしてました",
    "最後のところもう一回お願いします", "ちょっとよくわからないんですが", "それはどういう意味ですか",
    "どれくらい時間かかりますか", "もっと早い方法はありますか", "ちょっと難しそうですね",
    "はい、二回やりました", "それはもうやりました", "やってみたんですけどね",
    "もういいです、自分でやります", "いや、大丈夫です、見つかりました",
    "どういたしまして", "ご親切にどうも", "住所を確認してもらってもいいですか",
    "正直よくわからなくて", "機械にほんとに弱くてすみません", "物忘れがひどくてすみません",
    "あ、別のカードでした、すみません", "前の人はすごく親切でした", "昨日の方は五分で直してくれました",
    "お店の電話、誰も出ないんですよ", "メールを三回送ったのに返事がないです",
    "午前中ずっとこれにかかりきりです", "もうどうしていいかわからないです", "ほんとに参りました",
    "いやあ、困りましたね", "もう、勘弁してくださいよ", "ちょっと、高すぎませんか",
    "なにこの手数料", "また壊れたんですか、冗談でしょ", "もう一週間ですか",
    "この値段、ほんと泣けますね", "あなたを責めてるわけじゃないですよ",
    "何回電話させるんですか", "いつまで待てばいいんですか", "どうなってるんだよ、ほんとに",
    "早くしてくれよ", "ちゃんとやってくれよ", "話が違うじゃないか", "こっちは客なんだからさ",
    "いい加減にしてくれないかな", "何度言ったらわかるんですか", "前にも言ったよね",
    "聞いてんの、ねえ", "頼むからちゃんと調べてよ", "毎回これじゃ困るんだよね",
    # 幅広い日常語彙
    "学生向けの割引はありますか", "年金暮らしなので安いプランがいいです", "もう少しゆっくりお願いします",
    "日本語があまり得意じゃなくて", "電波が途切れ途切れで", "住所の漢字を確認させてください",
    "高橋のたかははしごだかです", "名字が珍しいのでよく間違えられます", "荷物が集配センターにあるそうです",
    "コンビニ受け取りにできますか", "取り付けはどなたがやってくれるんですか", "ドアのパッキンが劣化してます",
    "ちょうつがいが折れました", "食洗機の水が流れないんです", "電気ケトルでブレーカーが落ちるんです",
    "電子レンジから火花が出ました", "掃除機の吸引力が落ちました", "乾燥機から焦げた匂いがします",
    "給湯器の調子が悪いんです", "エアコンの温度表示がおかしいです", "スマートメーターの画面が消えてます",
    "チャージが反映されていません", "タッチ決済が使えませんでした", "ATMにカードが吸い込まれました",
    "キャッシュカードを再発行したいです", "住宅ローンのために残高証明が欲しいんです", "カードを一時停止できますか",
    "来週海外に行くんですけど", "海外でもスマホ使えますか", "飛行機が欠航になりまして",
    "ホテルの予約日が違ってるんです", "座席指定が消えてました", "処方薬がまだ届いてないんです",
    "クーポンが期限切れって出ます", "ギフトカードの残高がゼロなんです", "プロモーションコードが使えません",
    "ユーザー名を忘れました", "画像認証が表示されません", "シリアル番号はシールに書いてあります",
    "型番は裏面にあります", "保証は六月までです", "レシートはメールで届いてます",
    "耳が少し遠いもので", "会社の電話からかけてます", "携帯のほうに連絡してください",
    "お昼過ぎならいつでも大丈夫です", "午前中は難しいです", "今週は夜勤なんです",
    "管理人さんが受け取れます", "受付に預けてください", "ほっとしました、ありがとうございます",
]
JA_HOURS_FRAMES = {
    "jh1": "{place}は{when}何時まで{open}か", "jh2": "{when}は{open}か", "jh3": "{place}って{when}{open}か",
    "jh4": "{when}の{hours}を教えてください", "jh5": "{when}何時から{open}か",
}
JA_HOURS_SLOTS = {
    "place": ["お店", "店舗", "支店", "窓口", "コールセンター", "営業所", "サポート", "ショールーム"],
    "when": ["今日", "明日", "日曜日", "土曜日", "週末", "年末", "祝日", "お盆", "夜", "お昼"],
    "open": ["やってます", "開いてます", "営業してます", "つながります", "受け付けてます", "閉まってます"],
    "hours": ["営業時間", "受付時間", "開店時間", "閉店時間"],
}
# Rough, casual complaints with a blunt addressee but no insult or threat.
JA_ROUGH_FRAMES = {"jr1": "{S}のとこの{t}、{p}けど", "jr2": "{S}んとこの{t}{p}よ", "jr3": "{S}の会社の{t}、{p}んだけど"}
JA_ROUGH_SUBJECTS = ["お前", "おたく", "あんた", "そっち", "お宅"]
JA_ROUGH_P = ["壊れてる", "動かない", "届いてない", "また止まった", "使えない", "間違ってる", "高すぎる"]


# Short backchannels and acknowledgements: a large share of real utterances, and with only a few
# n-grams each, the ones most at the mercy of a stray abusive-looking n-gram (" of ", "you are").
EN_SHORT = [
    "of course", "sure", "sure thing", "you're welcome", "you are welcome", "no problem",
    "thank you", "thanks", "okay", "alright", "right", "yes", "yeah", "yep", "no", "nope",
    "uh huh", "I see", "got it", "I understand", "that's fine", "fine", "great", "perfect",
    "sounds good", "hello", "hi there", "are you there", "one moment", "just a moment", "sorry",
    "excuse me", "pardon", "what", "really", "oh no", "oh dear", "wow", "bye", "goodbye",
    "take care", "have a good one", "you too", "same to you", "me too", "not really", "maybe",
    "I guess so", "I don't know", "let me see", "hmm", "anyway", "exactly", "absolutely",
    "definitely", "of course not", "not at all", "go on", "please", "thank you very much",
    "much appreciated", "cheers", "lovely", "good morning", "good afternoon", "speaking",
    "it's me", "yes please", "no thanks", "you are right", "you're right", "you are correct",
    "you're kidding", "are you sure", "you are very kind", "you are too kind", "of course, yes",
    "course", "sure, of course", "you are the best", "you are so helpful", "that's all",
    "that's it", "is that all", "one second", "you there", "you are breaking up", "cool", "nice",
    "neat", "awesome", "good", "very good", "super", "sweet", "excellent", "wonderful",
    "fantastic", "splendid", "grand", "fair enough", "good stuff", "nice one", "good to know",
    "noted", "understood", "will do", "gotcha", "all good", "no worries", "never mind",
    "forget it", "my bad", "oops", "oh okay", "oh right", "indeed", "certainly", "totally",
    "for sure", "true", "cool, thanks", "oh cool", "go on then", "thanks so much",
    "thank you kindly", "much obliged", "appreciate it", "you've been great",
    "you've been very helpful", "good, good", "how nice", "how lovely", "too kind",
    # Bare subject + auxiliary answers: " i di" / " i do" sit next to " idi" (idiot).
    "I did", "I do", "I did it", "I didn't", "I don't", "I will", "I won't", "I know", "I have",
    "I had", "I am", "it is", "it did", "did it", "yes I did", "no I didn't", "I did, yes",
    "I do, yes", "good idea", "I think so", "it does", "we did", "they did", "she did", "he did",
]
JA_SHORT = [
    "はい", "ええ", "うん", "そうです", "そうですね", "なるほど", "わかりました", "了解です",
    "かしこまりました", "大丈夫です", "結構です", "ありがとう", "ありがとうございました", "どうも",
    "すみません", "失礼しました", "もしもし", "聞こえますか", "少々お待ちください", "はいはい",
    "いいえ", "違います", "そうなんですか", "本当ですか", "えっ", "あー", "お願いします",
    "よろしくお願いします", "助かります", "お世話になっております", "こんにちは", "おはようございます",
    "失礼します", "では", "とりあえず", "はい、どうぞ", "ちょっと待って", "なんですか", "どういうこと",
    "もちろんです", "いいですよ", "そうか", "そうだね", "ですよね", "確かに", "まあね", "困ったな",
    "お疲れ様です", "もういいです", "はい、はい", "あなたですか", "お前か", "あんたか", "君ね",
    "そうだよ", "だよね", "じゃあね", "なんだ", "それで", "はあ", "ほう", "へえ", "うーん",
    "いいですね", "すごい", "さすが", "了解", "オッケー", "承知しました", "どうぞ", "いいえ、結構です",
    "もちろん", "ほんとに", "やった", "よかった", "助かった", "サンキュー", "どうもどうも", "はーい",
    "そっか", "ふーん", "ああ", "おお", "あら", "なるほどね", "うん、うん", "そうそう", "ですね",
    "了解しました", "お願いね", "ありがとね", "またね", "おっけー", "いいよ", "だね",
]


# Plans and promises that share "I'll ... / I'm going to ..." with threats.
EN_BENIGN_FUTURE = [
    "I'll be home after six", "I'll be there at noon", "I'll wait for the technician",
    "I'll call you back in ten minutes", "I'm going to find the receipt",
    "I'll come by the store after work", "I'm going to pay the rest next week",
    "I'll be waiting for the delivery outside", "I'll send you the photos",
    "I'll be at work until five", "I'm coming to pick it up tomorrow",
    "I'll check my email tonight", "I'm going to be out of town next week",
    "I'll deal with it on Monday", "I know where you are, the shop on main street",
    "I'll find out and call back", "I'm going to move house in April",
    "I'll make the payment today", "I'll follow the instructions you sent",
    "I'm going to try restarting it again", "I'll watch for the email",
    "I'll be outside when the driver comes", "I'm bringing the receipt with me",
    "you're going to send a new one, right", "I promise I'll pay by friday",
    "I swear I already paid it", "I'm not joking, it's been three weeks",
    "you hear me okay now", "mark my words, this router will break again",
    "I'll hunt for the serial number", "I'll kill some time until the technician arrives",
    "I'll get back to you", "I'm coming down to the branch to sort it out",
    "I broke my piggy bank to pay this", "the pork chops arrived spoiled",
    "I need a monkey wrench for the installation", "there's a rat in the basement, I need pest control",
    "I bought a snake plant and it arrived dead", "the worm composting kit is missing a part",
    "my kids are little monsters about the internet", "the new guy at the store was a real sweetheart",
]
EN_AGENT = [
    "thank you for calling, how can I help you", "let me check that for you",
    "I'm sorry for the inconvenience", "can I have your account number please",
    "is there anything else I can help with", "I'll put you on a brief hold",
    "I've issued the refund", "your case number is eight four two",
    "please do not threaten me", "threatening our staff is not acceptable",
    "I will not accept being called names", "if the insults continue I will end this call",
    "I understand you are upset, but please don't swear at me",
    "we take threats very seriously", "please don't use that kind of language",
    "I'm going to transfer you to my supervisor",
    "this call is recorded for quality and training purposes",
    "I'm going to have to end the call if the abuse continues",
    "I hear that you're frustrated, let's sort it out",
    "our records show the payment went through",
]
EN_NEG_FRAMES = {
    "w01": "{X}", "w02": "{F} {X}", "w03": "{X}, {E}", "w04": "{F}, {X}",
    "w05": "{X}, you know", "w06": "so yeah, {X}", "w07": "{X}, anyway", "w08": "honestly, {X}",
}
EN_NEG_TAILS = ["okay", "thanks", "please", "I guess", "that's all", "right", "so"]

# --------------------------------------------------------------------------------------------
# Japanese lists
# --------------------------------------------------------------------------------------------

JA_FILLERS = ["", "", "", "あの", "あのー", "えっと", "えー", "ちょっと", "まあ", "いや",
              "だから", "もう", "ほんとに", "まじで", "なあ", "おい", "ねえ", "すみません"]
JA_SUBJECTS = ["お前", "おまえ", "てめえ", "あんた", "貴様", "おたく", "君", "そっち",
               "あなた", "お前ら", "てめー"]
JA_INSULT_NOUNS = [
    "役立たず", "バカ", "馬鹿", "アホ", "クズ", "無能", "給料泥棒", "税金泥棒", "ボケ",
    "カス", "ゴミ", "能無し", "間抜け", "低能", "ポンコツ", "馬鹿野郎", "バカ野郎",
    "クソ野郎", "アホンダラ", "ろくでなし", "出来損ない", "人間のクズ", "社会のゴミ",
    "無能社員", "ド素人", "穀潰し", "負け犬", "腰抜け", "たわけ", "頭の悪い奴",
    "使えない奴", "恥知らず", "老害", "ブス", "ハゲ", "キチガイ", "ボンクラ", "脳なし",
    "ゴミクズ", "アホ社員", "豚", "猿", "クソガキ", "ババア", "ジジイ", "ブタ野郎", "ボケナス",
    "カス野郎", "ゴミ野郎", "のろま", "グズ", "トンマ", "でくの坊", "ヘボ", "ド阿呆", "チンカス",
    "ハゲ野郎", "ダメ社員",
]
JA_KIND_NOUNS = ["天才", "命の恩人", "神様", "頼りになる人", "親切な人", "いい人",
                 "優秀な人", "プロ", "担当の方", "新人さん", "話のわかる人", "大人", "正直な人",
                 "真面目な人", "ベテラン", "物知り", "働き者", "最高", "責任者", "味方",
                 "頼もしい人", "一番まとも"]
JA_KIND_SUBJECTS = ["お前", "あんた", "君", "あなた", "おたく", "そっち"]
JA_NOUN_FRAMES = {
    "jn01": "{S}は{N}だ{P}", "jn02": "この{N}が", "jn03": "この{N}", "jn04": "{S}みたいな{N}に用はない",
    "jn05": "{N}と話しても無駄だ", "jn06": "本当に{N}だな、{S}は", "jn07": "{N}のくせに偉そうにするな",
    "jn08": "{N}はすっこんでろ", "jn09": "{S}、{N}じゃないの", "jn10": "{N}しかいないのか、この会社は",
    "jn11": "{N}に話しても仕方ない、上を出せ", "jn12": "{N}かよ", "jn13": "ほんとに{N}なんだから",
    "jn14": "{S}みたいな{N}がいるから会社がダメになるんだ", "jn15": "{N}は黙ってろ",
    "jn16": "{S}なんて{N}だよ", "jn17": "どこまで{N}なんだ", "jn18": "{N}とは話したくない",
    "jn19": "{S}、{N}だろ", "jn20": "おい{N}、聞いてんのか",
}
JA_KIND_NOUN_FRAMES = ["jn01", "jn06", "jn09", "jn12", "jn13", "jn16", "jn19"]
JA_INSULT_PREDICATES = [
    "死ね", "黙れ", "ふざけるな", "ふざけんな", "消えろ", "辞めちまえ", "辞めろ",
    "頭おかしいんじゃないの", "頭悪いな", "頭が悪すぎる", "バカじゃないの", "使えねえな",
    "黙ってろ", "くたばれ", "うるせえ", "日本語わかるか", "生きてる価値ない", "引っ込んでろ",
    "失せろ", "舐めてんのか", "なめんなよ", "脳みそ入ってんのか", "耳ついてんのか",
    "二度と出てくるな", "死んでしまえ", "地獄に落ちろ", "ぶざまだな", "アホか",
    "使い物にならねえな", "バカかお前は", "のろまだな", "とろいんだよ", "役に立たねえな",
    "頭空っぽか", "脳足りんが", "ガキかよ", "話にならねえんだよボケ",
]
JA_KIND_PREDICATES = ["少々お待ちください", "ちょっと待って", "もう一回言って", "ゆっくり話して",
                      "調べてみて", "確認して", "続けてください", "落ち着いて聞いて",
                      "大丈夫です", "わかりました", "早くして", "ちゃんと聞いて", "教えて",
                      "もういいよ", "頼むよ", "メモして", "繰り返して", "急いでくれ",
                      "書き留めといて", "代わって"]
JA_PRED_FRAMES = {
    "jp01": "{I}", "jp02": "{F}、{I}", "jp03": "{S}、{I}", "jp04": "{I}、{S}", "jp05": "いいから{I}",
    "jp06": "{I}！", "jp07": "ほんと{I}", "jp08": "もう{I}", "jp09": "{I}って言ってんだよ",
}
JA_KIND_PRED_FRAMES = sorted(JA_PRED_FRAMES)

JA_THREATS = [
    "殺すぞ", "ぶっ殺す", "ぶっ殺すぞ", "ぶっ殺してやる", "殺してやる", "覚えてろ", "覚えとけよ",
    "夜道に気をつけろ", "夜道には気をつけな", "火をつけるぞ", "店に火をつけてやる",
    "会社に火つけるぞ", "家を知ってるぞ", "住所はわかってるからな", "待ち伏せしてやる",
    "帰り道に気をつけろ", "ただじゃおかないぞ", "ただで済むと思うなよ", "痛い目にあわせてやる",
    "ぶん殴るぞ", "殴りに行くからな", "刺すぞ", "刺してやる", "今からそっちに行くからな",
    "会社に乗り込んでやる", "爆破してやる", "後悔させてやる", "どうなっても知らないぞ",
    "命はないと思え", "家族がどうなってもいいのか", "首を洗って待ってろ",
    "生きて帰れると思うな", "ボコボコにしてやる", "半殺しにしてやる", "包丁持って行くぞ",
    "ぶちのめしてやる", "二度と歩けないようにしてやる", "お前の名前は覚えたからな",
    "タダで済むと思うな", "息の根を止めてやる", "埋めてやる", "ガソリン撒いてやる",
    "ぶっ飛ばすぞ", "シメるぞ", "潰してやる", "ただじゃすまさねえ", "殴り殺すぞ", "家に火をつけてやる",
    "沈めてやる", "消してやる", "ぶっ刺すぞ", "八つ裂きにしてやる", "絞め殺すぞ",
    "お前の家族も知ってるぞ", "いつでも行けるからな", "駐車場で待ってるからな", "車に細工してやる",
]
JA_ESCALATIONS = [
    "解約します", "消費者センターに相談します", "弁護士に相談します", "本社に連絡します",
    "口コミに書きます", "二度と利用しません", "返金を求めます", "上の方に報告します",
    "他社に乗り換えます", "裁判も考えます", "国民生活センターに電話します", "明日また電話します",
    "店舗に直接行きます", "カード会社に連絡します", "監督官庁に報告します", "支払いを止めます",
    "SNSで報告します", "正式に苦情を出します", "警察に被害届を出します", "社長宛てに手紙を書きます",
    "全部返品します", "契約を見直します", "毎日電話しますよ", "友達にも言っておきます",
    "少額訴訟を起こします", "損害賠償を請求します", "責任者に来てもらいます", "ネットに書き込みます",
]
JA_THREAT_FRAMES = {
    "jt01": "{T}", "jt02": "{F}、{T}", "jt03": "{S}、{T}", "jt04": "いいか、{T}",
    "jt05": "本気だからな、{T}", "jt06": "今度やったら{T}", "jt07": "このままだったら{T}",
    "jt08": "{T}、わかったか", "jt09": "{T}、冗談じゃないぞ", "jt10": "返金しないなら{T}",
    "jt11": "次に電話切ったら{T}", "jt12": "{T}、{S}", "jt13": "おい{S}、{T}",
    "jt14": "言っとくけど{T}", "jt15": "明日までに直さないと{T}",
}
JA_ESCALATION_FRAMES = sorted(JA_THREAT_FRAMES)
JA_COMBO_FRAMES = {"jc1": "この{N}が、{T}", "jc2": "{T}、この{N}", "jc3": "{S}みたいな{N}は、{T}"}
JA_COMPLAINT_INSULT_FRAMES = {"jci1": "{C}、この{N}が", "jci2": "{C}。{S}は{N}か", "jci3": "{C}。{I}",
                              "jci4": "この{N}、{C}"}
JA_COMPLAINT_THREAT_FRAMES = {"jct1": "{C}。{T}", "jct2": "{C}、{T}", "jct3": "{T}。{C}"}

JA_COMPLAINTS = [
    "納得できません", "責任者と話したいです", "責任者を出してください", "上の方に代わってください",
    "弁護士に相談します", "返金してください", "消費者センターに連絡します", "どうなってるんですか",
    "いい加減にしてください", "何度も電話してるんですよ", "対応が遅すぎます", "二度と買いません",
    "解約したいです", "説明してください", "困るんですよ", "がっかりしました", "本当に腹が立ちます",
    "約束と違うじゃないですか", "前回も同じことを言われました", "ちゃんと調べてください",
    "待たされすぎです", "損害賠償を請求します", "訴えることも考えています",
    "録音させてもらいますからね", "話になりません", "誠意が感じられません", "意味がわかりません",
    "なんで毎回こうなるんですか", "一時間も待ったんですよ", "昨日も電話しました",
    "返品させてください", "交換してください", "二重に請求されています", "こんな対応ありえないです",
    "本当に不愉快です", "もう結構です", "早く対応してください", "きちんと謝罪してください",
    "名前を教えてください", "担当者を変えてください", "もう我慢の限界です", "信じられない対応ですね",
    "納得のいく説明をお願いします", "お宅の会社はどうなってるの", "何回同じことを言わせるんですか",
    "頼んだものと違う商品が届きました", "不良品でした", "壊れて届きました", "今日中に連絡ください",
    "怒ってるんですよ、こっちは", "責任者から折り返し電話をください", "返金はいつになるんですか",
    "これじゃ詐欺みたいなものですよ", "ふざけた対応ですね", "こっちは客なんですよ",
    "もう二度と頼みません", "責任を取ってください", "きちんと答えてください",
    "納得できないので本社に言います", "料金が高すぎます", "腹が立って仕方ないです",
    "どういうことですか", "説明が全然違います",
]
JA_BENIGN_TRIGGERS = [
    "死ぬほど忙しいんですよ", "死ぬほど待ちました", "バカ売れしてるって聞きました",
    "この商品バカ売れですね", "殺虫剤を買ったんですが効かないんです", "殺菌スプレーの件で",
    "電気代がバカにならないんですよ", "送料がバカ高いんですけど", "笑いすぎて死にそうでした",
    "死角にあって見えなかったんです", "必死で探したんですけど", "寒くて死ぬかと思いました",
    "部屋が殺風景なので", "ポイントで相殺できますか", "注文が殺到してるんですか",
    "コンロに火がつかないんです", "ガスの火をつけると変な音がします", "火災保険の手続きをしたくて",
    "夜道は暗いので配達は昼にしてください", "パスワードを覚えてないんです",
    "暗証番号を覚えていなくて", "覚えておきますね", "電池が死んでるみたいです",
    "スマホのバッテリーが死にました", "死亡保険の受取人を変えたい", "親バカなんで子供用を買いました",
    "粗大ゴミの回収をお願いしたいんです", "ゴミの日はいつですか", "この説明書は役に立たないですね",
    "アプリが全然役に立たないんですよ", "泥棒に入られたので保険の請求をしたい",
    "給料日まで待ってもらえますか", "給料が振り込まれたら払います", "殴り書きのメモしかなくて",
    "気をつけて帰ります", "お体に気をつけてください", "夜分にすみません",
    "脅迫状みたいな督促状が届いて怖いです", "殺人的な暑さですね", "爆発的に売れてるそうですね",
    "切れ味が悪い包丁を交換したい", "包丁の研ぎ直しサービスはありますか",
    "車にぶつけられまして", "ボコボコの箱で届きました", "箱が潰れて届きました",
    "充電器が刺さったまま抜けないんです", "刺身を注文したんですが", "名刺を作りたいんですが",
    "クズ野菜で作ったスープが", "紙くずが中に入っていました", "家を知ってる人に頼みます",
    "住所がわかってるなら送ってください", "乗り込む前に確認したいんですが",
    "殺さないでって子供が言ってます", "ゴキブリを殺す薬はありますか", "後悔しないように選びたいです",
    "命に別状はないです", "火をつけるタイプのストーブです", "花火に火をつけたら",
    "ぶっちゃけ高いですよね", "ばかばかしい話ですけど", "この前は死ぬほど笑いました",
    "豚肉が傷んで届きました", "冷凍の豚まんが届きません", "猿のぬいぐるみの電池が切れました",
    "子供がガキ大将で困ってます", "うちのおばあちゃんの代わりに電話してます", "豚汁の素を注文しました",
    "消しゴムが入っていませんでした", "潰れたお店のポイントはどうなりますか", "沈没したみたいに電波がない",
    "駐車場はありますか", "車の保険の件で電話しました", "家族割を使いたいんですが",
]
JA_ORDINARY = [
    "もしもし", "請求書の件でお電話しました", "先週注文した商品がまだ届かないんですが",
    "住所変更をお願いしたいんですが", "契約番号を言えばいいですか", "はい、そうです",
    "ありがとうございます", "インターネットがつながらないんです", "料金プランを変更したいです",
    "折り返しお電話いただけますか", "電話番号は090の1234です", "生年月日は昭和五十年三月です",
    "支払い方法を変えたいです", "明細を送ってもらえますか", "クレジットカードで払えますか",
    "配達日を変更したいです", "午後なら家にいます", "わかりました", "大丈夫です", "助かりました",
    "よろしくお願いします", "失礼します", "聞こえますか", "電波が悪くてすみません",
    "もう一度お願いできますか", "メールアドレスはこれで合っています", "母の代わりに電話しています",
    "パスワードを忘れてしまって", "修理の予約をしたいです", "保証期間はいつまでですか",
    "営業時間を教えてください", "領収書は出ますか", "ポイントは使えますか",
    "サイズを交換したいです", "名義を変更したいんですが", "引っ越しの手続きをしたいです",
    "テレビの映りが悪いんです", "リモコンが反応しなくて", "在庫はありますか",
    "色違いはありますか", "今日中に届きますか", "了解です", "それでお願いします",
    "ちょっと待ってくださいね", "メモを取りますので", "えっと、番号はどこに書いてありますか",
    "夫の名義なんですけど", "分割払いはできますか", "キャンセルはできますか", "はい、お願いします",
]
# Rough, casual endings (からな, ぞ, てやる) without a threat.
JA_ROUGH_BENIGN = [
    "明日また電話するからな", "書類はもう送ったからな", "金はもう払ったぞ", "もう振り込んだぞ",
    "レシートはあるぞ", "領収書は持ってるからな", "番号は控えてあるからな", "約束したからな",
    "今から店に取りに行きますね", "明日の朝そっちに行きます", "家にいるから届けてくれ",
    "ちゃんと見てるからな、明細", "覚えてますよ、前の担当の人", "名前は覚えましたので、また連絡します",
    "住所はメールで送りました", "夜に電話するからよろしく", "待ってるからな、配達",
    "今回だけは許してやる", "直してやるから部品を送ってくれ", "自分で調べてやるよ",
    "一応言っておくけど急ぎだぞ", "次はちゃんと頼むぞ", "気をつけて運んでくれよ",
    "帰り道に寄って受け取ります", "覚えとくよ、その番号",
]
JA_AGENT = [
    "お電話ありがとうございます", "お調べいたしますので少々お待ちください",
    "ご不便をおかけして申し訳ございません", "他にご用件はございますか", "担当の者に代わります",
    "本日中にご連絡いたします", "暴言はおやめください", "脅迫と受け取れる発言は記録しております",
    "このような発言が続く場合は通話を終了させていただきます", "乱暴な言葉はご遠慮ください",
    "お客様、落ち着いてください", "殺すなどの発言があった場合は警察に通報いたします",
    "大変申し訳ございませんでした", "ご本人様確認のためお名前をお願いします",
    "返金の手続きを進めさせていただきます", "責任者から折り返しご連絡いたします",
    "威圧的な言動はお控えください", "通話は品質向上のため録音させていただいております",
]
JA_NEG_FRAMES = {
    "jw01": "{X}", "jw02": "{F}、{X}", "jw03": "{X}。{E}", "jw04": "{F}{X}", "jw05": "{X}けど",
    "jw06": "{X}ね", "jw07": "それで、{X}", "jw08": "{X}。はい",
}
JA_NEG_TAILS = ["お願いします", "すみません", "はい", "どうも", "本当に", "ね"]
JA_FINALS = ["", "", "な", "よ", "ね", "ぞ"]

# Lexemes the brief names as defining examples: always in train.
PINNED = {
    "useless idiot", "stupid moron", "idiot", "moron", "I will kill you", "watch your back",
    "I know where you live", "役立たず", "バカ", "クズ", "無能", "給料泥棒", "殺すぞ",
    "ぶっ殺す", "覚えてろ", "夜道に気をつけろ", "火をつけるぞ", "死ね", "黙れ", "ふざけるな",
    "this is unacceptable, I want a refund", "I want to speak to your manager", "納得できません",
    "責任者と話したいです", "弁護士に相談します", "返金してください", "the app is killing my battery",
    "I'm dying to know when it ships", "死ぬほど忙しいんですよ", "この商品バカ売れですね",
    "殺虫剤を買ったんですが効かないんです",
}

# --------------------------------------------------------------------------------------------
# ASR-like corruption
# --------------------------------------------------------------------------------------------

EN_MISHEAR = {
    "idiot": ["idiots", "idiet", "eediot", "idiot idiot"], "moron": ["moran", "more on", "morons"],
    "useless": ["use less", "youseless", "useles"], "stupid": ["stupit", "stoopid", "stuped"],
    "kill you": ["kill ya", "kilyou", "kill u", "killed you"], "watch your back": [
        "watch yer back", "watch your bag", "watch you back"],
    "where you live": ["where you leave", "where you liv", "where u live"],
    "imbecile": ["imbecil", "embecile"], "incompetent": ["in competent", "incompetant"],
    "pathetic": ["puthetic", "pathetik"], "loser": ["looser"], "shut up": ["shutup", "shut op", "shot up"],
    "shit": ["s***", "sh*t"], "fuck": ["f***", "f*ck", "fuk"], "fucking": ["f***ing", "freaking", "fuckin"],
    "asshole": ["a**hole", "ass hole"], "burn": ["bern", "burned"], "find you": ["fine you", "find ya"],
    "dead": ["ded", "dad"], "hell": ["hel", "heck"], "dumbass": ["dumb ass"], "retard": ["re tard", "retired"],
    "bitch": ["b****", "beach"], "I'll": ["I will", "all", "ill", "I"], "you're": ["your", "you are", "yer"],
    "I'm": ["I am", "im", "um"], "gonna": ["going to", "gon"], "going to": ["gonna", "gone to"],
    "garbage": ["garbige"], "clown": ["clowns", "crown"], "kill": ["kil", "kills", "keel"],
    "battery": ["batter", "battery's"], "refund": ["re fund", "refunds"], "manager": ["manger", "managers"],
    "supervisor": ["super visor"], "unacceptable": ["unexceptable", "an acceptable"],
    "lawyer": ["layer", "loyer"], "complaint": ["complain"], "dying": ["dyin", "dying"],
    "scumbag": ["scum bag"], "piece of": ["peace of", "piece a"], "waste": ["waist"],
    "knife": ["knives", "nife"], "shoot": ["shoo", "shoots"], "stab": ["stub", "stabb"],
    "neck": ["next"], "legs": ["leg"], "gun": ["gum", "gone"], "dead meat": ["dead meet"],
    "moron.": ["moron"],
    "knees": ["needs", "knee"], "apologize": ["apologise", "a pollo guys"], "underwear": ["under wear"],
    "wearing": ["where in", "wearin"], "sexy": ["sexi", "sex he"], "internet": ["inter net"],
    "address": ["adress", "a dress"], "foreigner": ["foreigners", "for in her"], "post": ["posed", "toast"],
}
EN_DROPPABLE = {"the", "a", "an", "to", "and", "so", "just", "you", "I", "that"}

JA_MISHEAR = {
    "役立たず": ["やくたたず", "薬ださず", "役たたず", "やくだたず", "約立たず"],
    "給料泥棒": ["給料ドロボー", "きゅうりょうどろぼう", "給料どろぼう"],
    "税金泥棒": ["税金ドロボー", "ぜいきんどろぼう"], "無能": ["むのう", "無脳", "無農"],
    "クズ": ["くず", "屑", "くずー"], "馬鹿": ["ばか", "バカ"], "バカ": ["ばか", "馬鹿", "バカー"],
    "アホ": ["あほ", "阿保"], "ボケ": ["ぼけ", "ボケー"], "カス": ["かす", "粕"], "ゴミ": ["ごみ", "ゴミー"],
    "殺すぞ": ["ころすぞ", "殺すそ", "殺すぞー", "殺すよ"], "ぶっ殺": ["ぶっころ", "ぶつ殺", "ぶっこ"],
    "殺して": ["ころして", "殺しで"], "殺す": ["ころす", "コロス", "殺す"], "覚えてろ": ["おぼえてろ", "覚えてろよ", "憶えてろ"],
    "覚えとけ": ["おぼえとけ", "覚えとけ"], "夜道": ["よみち", "夜みち", "夜道"],
    "気をつけろ": ["きをつけろ", "気を付けろ", "木をつけろ"], "火をつける": ["日をつける", "火を付ける", "ひをつける"],
    "火つける": ["日つける", "火付ける"], "死ね": ["しね", "氏ね", "死ねー"], "黙れ": ["だまれ", "黙れー"],
    "消えろ": ["きえろ", "消えろー"], "ふざけるな": ["ふざけんな", "ふざけるなー", "ふざける な"],
    "ふざけんな": ["ふざけるな", "ふざけんなよ"], "てめえ": ["てめー", "テメエ", "手前"],
    "貴様": ["きさま", "キサマ"], "お前": ["おまえ", "オマエ", "御前"], "刺す": ["さす", "指す"],
    "殴る": ["なぐる"], "殴り": ["なぐり"], "爆破": ["ばくは", "爆発"], "待ち伏せ": ["まちぶせ"],
    "住所": ["じゅうしょ"], "家族": ["かぞく"], "痛い目": ["いたいめ", "痛いめ"],
    "後悔": ["こうかい", "公開"], "能無し": ["のうなし", "脳なし"], "間抜け": ["まぬけ"],
    "低能": ["ていのう"], "出来損ない": ["できそこない"], "頭": ["あたま"], "使えねえ": ["つかえねえ", "使えねー"],
    "ただじゃおかない": ["ただじゃおかねえ", "ただじゃ置かない"], "殺虫剤": ["さっちゅうざい", "殺虫材"],
    "死ぬほど": ["しぬほど", "死ぬ程"], "バカ売れ": ["ばか売れ", "馬鹿売れ"], "火災": ["かさい", "火災"],
    "給料": ["きゅうりょう"], "泥棒": ["どろぼう", "ドロボー"], "役に立たない": ["やくにたたない", "役にたたない"],
    "納得": ["なっとく"], "責任者": ["せきにんしゃ", "責任者さん"], "弁護士": ["べんごし"],
    "返金": ["へんきん", "変金"], "消費者": ["しょうひしゃ"], "解約": ["かいやく"],
    "包丁": ["ほうちょう"], "半殺し": ["はんごろし"], "乗り込": ["のりこ"], "首を洗って": ["くびをあらって"],
    "命": ["いのち"], "申し訳": ["もうしわけ"], "電話": ["でんわ"], "確認": ["かくにん"],
    "土下座": ["どげざ", "土下さ", "ど下座", "度下座"], "晒す": ["さらす", "サラス", "皿す"],
    "晒して": ["さらして", "さらしで"], "謝罪": ["しゃざい", "写材"], "誠意": ["せいい", "制衣"],
    "下着": ["したぎ", "下木"], "外国人": ["がいこくじん", "外国陣"], "慰謝料": ["いしゃりょう", "医者料"],
    "実名": ["じつめい"], "女のくせに": ["おんなのくせに", "女の癖に"], "ちくしょう": ["畜生", "チクショー"],
    "クソ": ["くそ", "糞", "クソー"], "謝りに来い": ["あやまりにこい", "謝りにこい"],
}
JA_FILLER_INSERTS = ["えー", "あの", "その", "まあ"]
JA_ZO_MISHEAR = ["", "そ", "ぞう", "像", "蔵", "ぞお", "よ", "ど"]


def _hira(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in text)


class _Kana:
    """Whole-sentence kana reading via pyopenjtalk (build-time only), as Whisper sometimes emits."""

    def __init__(self) -> None:
        import pyopenjtalk

        self._g2p = pyopenjtalk.g2p

    def __call__(self, text: str) -> str:
        return _hira(self._g2p(text, kana=True))


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["drop", "double", "swap"])
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def asr_en(text: str, rng: random.Random) -> str:
    out = text
    hits = [k for k in EN_MISHEAR if k.lower() in out.lower()]
    ops = rng.sample(["mishear", "typo", "drop", "stutter", "filler", "case"], k=2)
    if hits and ("mishear" in ops or rng.random() < 0.6):
        key = rng.choice(hits)
        pattern = re.compile(re.escape(key), re.IGNORECASE)
        out = pattern.sub(rng.choice(EN_MISHEAR[key]), out, count=1)
    words = out.split()
    if "typo" in ops and words:
        j = rng.randrange(len(words))
        words[j] = _typo(words[j], rng)
    if "drop" in ops and len(words) > 3:
        drops = [j for j, w in enumerate(words) if w.strip(",.").lower() in {d.lower() for d in EN_DROPPABLE}]
        if drops:
            del words[rng.choice(drops)]
    if "stutter" in ops and words:
        j = rng.randrange(len(words))
        words.insert(j, words[j].strip(",.?!"))
    if "filler" in ops and len(words) > 1:
        words.insert(rng.randrange(1, len(words)), rng.choice(["uh", "um", "like"]))
    out = " ".join(words)
    out = re.sub(r"[.,!?;:]", "", out) if rng.random() < 0.7 else out
    return out.lower() if "case" in ops or rng.random() < 0.5 else out


def asr_ja(text: str, rng: random.Random, kana: _Kana) -> str:
    if rng.random() < 0.15:
        out = kana(text)
    else:
        out = text
        hits = [k for k in JA_MISHEAR if k in out]
        rng.shuffle(hits)
        for key in hits[: rng.choice([1, 1, 2])]:
            out = out.replace(key, rng.choice(JA_MISHEAR[key]), 1)
        if not hits or rng.random() < 0.3:
            # Katakana <-> hiragana swaps and dropped small tsu are common Whisper slips.
            out = _hira(out) if rng.random() < 0.5 else out.replace("っ", "", 1)
    if "ぞ" in out and rng.random() < 0.4:
        # The sentence-final ぞ is short and unstressed: Whisper drops it or writes a homophone.
        out = out.replace("ぞ", rng.choice(JA_ZO_MISHEAR), 1)
    if rng.random() < 0.25 and "、" in out:  # hesitation at a phrase boundary
        head, tail = out.split("、", 1)
        out = f"{head}、{rng.choice(JA_FILLER_INSERTS)}{tail}"
    r = rng.random()
    if r < 0.6:
        out = re.sub(r"[、。！？!?,.]", "", out)
    elif r < 0.8:
        out = re.sub(r"[、。！？!?]", " ", out).strip()
    return out


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    lang: str
    insult: int
    threat: int
    kind: str
    text: str
    keys: list[str] = field(default_factory=list)
    variant: str = "clean"
    source: str = "template"
    split: str = ""
    holdout: str = ""
    # The v2 categories (categories.py); 0 unless a builder or label_profanity sets them.
    exposure: int = 0
    coercion: int = 0
    discrimination: int = 0
    sexual: int = 0
    profanity: int = 0

    def labels(self) -> tuple[int, ...]:
        return tuple(getattr(self, c) for c in CATEGORIES)


def _article(noun: str, article: str) -> str:
    return f"{article} {noun}" if article else noun


def _en_surface(core: str, rng: random.Random) -> str:
    filler = rng.choice(EN_FILLERS)
    tail = rng.choice(EN_TAILS)  # same odds for every label: a tail must not be evidence
    text = core
    if filler:
        text = f"{filler} {text}" if filler.endswith(",") else f"{filler}, {text}"
    if tail:
        text = f"{text}, {tail}"
    end = rng.choice([".", ".", "!", "?", "", "..."])
    text = text + end
    return text[0].upper() + text[1:] if rng.random() < 0.7 else text


def _ja_surface(core: str, rng: random.Random) -> str:
    filler = rng.choice(JA_FILLERS)
    text = f"{filler}、{core}" if filler and rng.random() < 0.7 else f"{filler}{core}"
    return text + rng.choice(["。", "。", "！", "", "？", "…", "ー"])


def fill(frame: str, **parts: str) -> str:
    return frame.format(**parts)


def build_english(rng: random.Random) -> list[Row]:
    rows: list[Row] = []

    def add(core: str, insult: int, threat: int, kind: str, keys: list[str]) -> None:
        text = _en_surface(core, rng)
        rows.append(Row("en", insult, threat, kind, text, keys))

    for noun, art in EN_INSULT_NOUNS:
        for fid, frame in EN_NOUN_FRAMES.items():
            add(fill(frame, N=noun, aN=_article(noun, art)), 1, 0, "insult",
                [f"en.insult_noun:{noun}", f"en.frame.noun:{fid}"])
    for noun, art in EN_KIND_NOUNS:
        for fid in EN_KIND_NOUN_FRAMES:
            add(fill(EN_NOUN_FRAMES[fid], N=noun, aN=_article(noun, art)), 0, 0, "kind_fill",
                [f"en.kind_noun:{noun}", f"en.frame.noun:{fid}"])
    for adj in EN_INSULT_ADJS:
        for fid, frame in EN_ADJ_FRAMES.items():
            add(fill(frame, A=adj), 1, 0, "insult", [f"en.insult_adj:{adj}", f"en.frame.adj:{fid}"])
    for adj in EN_KIND_ADJS:
        for fid in EN_KIND_ADJ_FRAMES:
            add(fill(EN_ADJ_FRAMES[fid], A=adj), 0, 0, "kind_fill",
                [f"en.kind_adj:{adj}", f"en.frame.adj:{fid}"])
    simple_adjs = [a for a in EN_INSULT_ADJS if " " not in a]
    for adj in simple_adjs:
        for noun, _ in rng.sample(EN_INSULT_NOUNS, 4):
            fid = rng.choice(sorted(EN_ADJ_NOUN_FRAMES))
            article = "an" if adj[0] in "aeiou" else "a"
            add(fill(EN_ADJ_NOUN_FRAMES[fid], A=adj, N=noun, a=article), 1, 0, "insult",
                [f"en.insult_adj:{adj}", f"en.insult_noun:{noun}", f"en.frame.adjnoun:{fid}"])
    for imp in EN_INSULT_IMPERATIVES:
        for fid, frame in EN_IMP_FRAMES.items():
            add(fill(frame, I=imp), 1, 0, "insult", [f"en.insult_imp:{imp}", f"en.frame.imp:{fid}"])
    for imp in EN_KIND_IMPERATIVES:
        for fid in EN_KIND_IMP_FRAMES:
            add(fill(EN_IMP_FRAMES[fid], I=imp), 0, 0, "kind_fill",
                [f"en.kind_imp:{imp}", f"en.frame.imp:{fid}"])
    for threat in EN_THREATS:
        for fid, frame in EN_THREAT_FRAMES.items():
            add(fill(frame, T=threat), 0, 1, "threat", [f"en.threat:{threat}", f"en.frame.threat:{fid}"])
        for noun, _ in rng.sample(EN_INSULT_NOUNS, 5):
            fid = rng.choice(sorted(EN_COMBO_FRAMES))
            add(fill(EN_COMBO_FRAMES[fid], T=threat, N=noun), 1, 1, "insult+threat",
                [f"en.threat:{threat}", f"en.insult_noun:{noun}", f"en.frame.combo:{fid}"])
    for esc in EN_ESCALATIONS:
        for fid in EN_ESCALATION_FRAMES:
            add(fill(EN_THREAT_FRAMES[fid], T=esc), 0, 0, "escalation",
                [f"en.escalation:{esc}", f"en.frame.threat:{fid}"])
    for complaint in EN_COMPLAINTS:
        for fid, frame in EN_NEG_FRAMES.items():
            core = fill(frame, X=complaint, F=rng.choice(EN_FILLERS[3:]), E=rng.choice(EN_NEG_TAILS))
            add(core, 0, 0, "complaint", [f"en.complaint:{complaint}", f"en.frame.neg:{fid}"])
    ord_cores = []
    for fid, frame in EN_ORD_FRAMES.items():
        names = sorted({n for n in EN_ORD_SLOTS if "{" + n + "}" in frame})
        for _ in range(ORD_PER_FRAME):
            core = fill(frame, **{n: rng.choice(EN_ORD_SLOTS[n]) for n in names})
            ord_cores.append(core)
            add(core, 0, 0, "ordinary", [f"en.ord_template:{core}", f"en.frame.ord:{fid}"])
    for fid, frame in EN_HOURS_FRAMES.items():
        names = sorted({n for n in EN_HOURS_SLOTS if "{" + n + "}" in frame})
        for _ in range(HOURS_PER_FRAME):
            core = fill(frame, **{n: rng.choice(EN_HOURS_SLOTS[n]) for n in names})
            add(core, 0, 0, "ordinary", [f"en.hours_template:{core}", f"en.frame.hours:{fid}"])
    # Abuse inside otherwise ordinary sentences: benign words must not outvote it.
    mixed_sources = ([("complaint", c) for c in EN_COMPLAINTS] + [("ordinary", o) for o in EN_ORDINARY]
                     + [("ord_template", o) for o in ord_cores[::3]]
                     + [("everyday", e) for e in EN_EVERYDAY[::3]]
                     + [("benign", b) for b in EN_BENIGN_TRIGGERS[::2]]
                     + [("short", b) for b in EN_SHORT[::3]])
    for pool, clause in mixed_sources:
        for _ in range(2):
            noun, art = rng.choice(EN_INSULT_NOUNS)
            imp = rng.choice(EN_INSULT_IMPERATIVES)
            fid = rng.choice(sorted(EN_COMPLAINT_INSULT_FRAMES))
            lexeme = f"en.insult_imp:{imp}" if fid == "ci3" else f"en.insult_noun:{noun}"
            add(fill(EN_COMPLAINT_INSULT_FRAMES[fid], C=clause, N=noun, aN=_article(noun, art), I=imp),
                1, 0, "insult", [f"en.{pool}:{clause}", lexeme, f"en.frame.ci:{fid}"])
        threat = rng.choice(EN_THREATS)
        fid = rng.choice(sorted(EN_COMPLAINT_THREAT_FRAMES))
        add(fill(EN_COMPLAINT_THREAT_FRAMES[fid], C=clause, T=threat), 0, 1, "threat",
            [f"en.{pool}:{clause}", f"en.threat:{threat}", f"en.frame.ct:{fid}"])
    for pool, items, kind, frames in [
        ("benign", EN_BENIGN_TRIGGERS, "benign_trigger", sorted(EN_NEG_FRAMES)),
        ("ordinary", EN_ORDINARY, "ordinary", ["w01", "w02", "w03", "w05", "w06"]),
        ("short", EN_SHORT, "ordinary", ["w01", "w02", "w03", "w04", "w07"]),
        ("future", EN_BENIGN_FUTURE, "benign_trigger", ["w01", "w02", "w03", "w04", "w05", "w08"]),
        ("agent", EN_AGENT, "agent", ["w01", "w02", "w04", "w07"]),
        ("everyday", EN_EVERYDAY, "ordinary", ["w01", "w02", "w03", "w05", "w06", "w07"]),
    ]:
        for item in items:
            for fid in frames:
                core = fill(EN_NEG_FRAMES[fid], X=item, F=rng.choice(EN_FILLERS[3:]),
                            E=rng.choice(EN_NEG_TAILS))
                add(core, 0, 0, kind, [f"en.{pool}:{item}", f"en.frame.neg:{fid}"])
    return rows


def build_japanese(rng: random.Random) -> list[Row]:
    rows: list[Row] = []

    def add(core: str, insult: int, threat: int, kind: str, keys: list[str]) -> None:
        rows.append(Row("ja", insult, threat, kind, _ja_surface(core, rng), keys))

    def parts() -> dict[str, str]:
        return {"S": rng.choice(JA_SUBJECTS), "P": rng.choice(JA_FINALS), "F": rng.choice(JA_FILLERS[3:])}

    for noun in JA_INSULT_NOUNS:
        for fid, frame in JA_NOUN_FRAMES.items():
            add(fill(frame, N=noun, **parts()), 1, 0, "insult", [f"ja.insult_noun:{noun}", f"ja.frame.noun:{fid}"])
    for noun in JA_KIND_NOUNS:
        for fid in JA_KIND_NOUN_FRAMES:
            add(fill(JA_NOUN_FRAMES[fid], N=noun, **(parts() | {"S": rng.choice(JA_KIND_SUBJECTS)})), 0, 0, "kind_fill",
                [f"ja.kind_noun:{noun}", f"ja.frame.noun:{fid}"])
    for pred in JA_INSULT_PREDICATES:
        for fid, frame in JA_PRED_FRAMES.items():
            add(fill(frame, I=pred, **parts()), 1, 0, "insult", [f"ja.insult_pred:{pred}", f"ja.frame.pred:{fid}"])
        noun = rng.choice(JA_INSULT_NOUNS)
        add(f"{pred}、この{noun}が", 1, 0, "insult",
            [f"ja.insult_pred:{pred}", f"ja.insult_noun:{noun}", "ja.frame.prednoun:jpn1"])
    for pred in JA_KIND_PREDICATES:
        for fid in JA_KIND_PRED_FRAMES:
            add(fill(JA_PRED_FRAMES[fid], I=pred, **parts()), 0, 0, "kind_fill",
                [f"ja.kind_pred:{pred}", f"ja.frame.pred:{fid}"])
    for threat in JA_THREATS:
        for fid, frame in JA_THREAT_FRAMES.items():
            add(fill(frame, T=threat, **parts()), 0, 1, "threat", [f"ja.threat:{threat}", f"ja.frame.threat:{fid}"])
        for noun in rng.sample(JA_INSULT_NOUNS, 5):
            fid = rng.choice(sorted(JA_COMBO_FRAMES))
            add(fill(JA_COMBO_FRAMES[fid], T=threat, N=noun, **parts()), 1, 1, "insult+threat",
                [f"ja.threat:{threat}", f"ja.insult_noun:{noun}", f"ja.frame.combo:{fid}"])
    for esc in JA_ESCALATIONS:
        for fid in JA_ESCALATION_FRAMES:
            add(fill(JA_THREAT_FRAMES[fid], T=esc, **parts()), 0, 0, "escalation",
                [f"ja.escalation:{esc}", f"ja.frame.threat:{fid}"])
    for complaint in JA_COMPLAINTS:
        for fid, frame in JA_NEG_FRAMES.items():
            core = fill(frame, X=complaint, F=rng.choice(JA_FILLERS[3:]), E=rng.choice(JA_NEG_TAILS))
            add(core, 0, 0, "complaint", [f"ja.complaint:{complaint}", f"ja.frame.neg:{fid}"])
    ord_cores = []
    for fid, frame in JA_ORD_FRAMES.items():
        names = sorted({n for n in JA_ORD_SLOTS if "{" + n + "}" in frame})
        for _ in range(ORD_PER_FRAME):
            core = fill(frame, **{n: rng.choice(JA_ORD_SLOTS[n]) for n in names})
            ord_cores.append(core)
            add(core, 0, 0, "ordinary", [f"ja.ord_template:{core}", f"ja.frame.ord:{fid}"])
    for fid, frame in JA_HOURS_FRAMES.items():
        names = sorted({n for n in JA_HOURS_SLOTS if "{" + n + "}" in frame})
        for _ in range(HOURS_PER_FRAME):
            core = fill(frame, **{n: rng.choice(JA_HOURS_SLOTS[n]) for n in names})
            add(core, 0, 0, "ordinary", [f"ja.hours_template:{core}", f"ja.frame.hours:{fid}"])
    for fid, frame in JA_ROUGH_FRAMES.items():
        for _ in range(HOURS_PER_FRAME):
            core = fill(frame, S=rng.choice(JA_ROUGH_SUBJECTS), t=rng.choice(JA_ORD_SLOTS["t"]),
                        p=rng.choice(JA_ROUGH_P))
            add(core, 0, 0, "complaint", [f"ja.rough_template:{core}", f"ja.frame.rough:{fid}"])
    # Abuse inside otherwise ordinary sentences: benign words must not outvote it.
    mixed_sources = ([("complaint", c) for c in JA_COMPLAINTS] + [("ordinary", o) for o in JA_ORDINARY]
                     + [("ord_template", o) for o in ord_cores[::3]]
                     + [("everyday", e) for e in JA_EVERYDAY[::3]]
                     + [("benign", b) for b in JA_BENIGN_TRIGGERS[::2]]
                     + [("short", b) for b in JA_SHORT[::3]])
    for pool, clause in mixed_sources:
        for _ in range(2):
            noun = rng.choice(JA_INSULT_NOUNS)
            pred = rng.choice(JA_INSULT_PREDICATES)
            fid = rng.choice(sorted(JA_COMPLAINT_INSULT_FRAMES))
            lexeme = f"ja.insult_pred:{pred}" if fid == "jci3" else f"ja.insult_noun:{noun}"
            add(fill(JA_COMPLAINT_INSULT_FRAMES[fid], C=clause, N=noun, I=pred, **parts()), 1, 0,
                "insult", [f"ja.{pool}:{clause}", lexeme, f"ja.frame.ci:{fid}"])
        threat = rng.choice(JA_THREATS)
        fid = rng.choice(sorted(JA_COMPLAINT_THREAT_FRAMES))
        add(fill(JA_COMPLAINT_THREAT_FRAMES[fid], C=clause, T=threat), 0, 1, "threat",
            [f"ja.{pool}:{clause}", f"ja.threat:{threat}", f"ja.frame.ct:{fid}"])
    for pool, items, kind, frames in [
        ("benign", JA_BENIGN_TRIGGERS, "benign_trigger", sorted(JA_NEG_FRAMES)),
        ("ordinary", JA_ORDINARY, "ordinary", ["jw01", "jw02", "jw04", "jw06", "jw07"]),
        ("short", JA_SHORT, "ordinary", ["jw01", "jw02", "jw03", "jw04", "jw08"]),
        ("rough", JA_ROUGH_BENIGN, "benign_trigger", ["jw01", "jw02", "jw04", "jw07", "jw08"]),
        ("agent", JA_AGENT, "agent", ["jw01", "jw02", "jw03", "jw08"]),
        ("everyday", JA_EVERYDAY, "ordinary", ["jw01", "jw02", "jw04", "jw06", "jw07", "jw08"]),
    ]:
        for item in items:
            for fid in frames:
                core = fill(JA_NEG_FRAMES[fid], X=item, F=rng.choice(JA_FILLERS[3:]),
                            E=rng.choice(JA_NEG_TAILS))
                add(core, 0, 0, kind, [f"ja.{pool}:{item}", f"ja.frame.neg:{fid}"])
    return rows


def _categories_module():
    """categories.py beside this file: the v2 categories' lexemes, frames and hard negatives."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("text_abuse_v2_categories", HERE / "categories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NEW = _categories_module()
PINNED |= set(NEW.PINNED)
MIX_FRAMES = {"en": {"mx1": "{C}. {X}", "mx2": "{X}. {C}", "mx3": "{C}, and {X}"},
              "ja": {"jmx1": "{C}。{X}", "jmx2": "{X}。{C}", "jmx3": "{C}、{X}"}}


def build_new_categories(rng: random.Random) -> list[Row]:
    """exposure, coercion, discrimination, sexual, profanity: every lexeme in every frame of its
    category, once inside a complaint; every hard negative in the negative frames and in three
    frames of the category it imitates, and the v1 complaints and ordinary lines in one frame of
    each category (so a frame is never evidence on its own)."""
    rows: list[Row] = []
    complaints = {"en": EN_COMPLAINTS, "ja": JA_COMPLAINTS}
    benign = {"en": [("complaint", "complaint", EN_COMPLAINTS), ("ordinary", "ordinary", EN_ORDINARY),
                     ("short", "ordinary", EN_SHORT[::3])],
              "ja": [("complaint", "complaint", JA_COMPLAINTS), ("ordinary", "ordinary", JA_ORDINARY),
                     ("short", "ordinary", JA_SHORT[::2])]}
    surface = {"en": _en_surface, "ja": _ja_surface}

    def add(lang: str, core: str, labels: set[str], kind: str, keys: list[str]) -> None:
        flags = {c: int(c in labels) for c in CATEGORIES}
        rows.append(Row(lang, flags.pop("insult"), flags.pop("threat"), kind,
                        surface[lang](core, rng), keys, **flags))

    for cat in NEW.NEW_CATEGORIES:
        for lang in ("en", "ja"):
            frames = NEW.FRAMES[cat][lang]
            for lexeme in NEW.LEXEMES[cat][lang]:
                labels = {cat, *NEW.EXTRA_LABELS.get(lexeme, ())}
                lex_key = f"{lang}.{cat}:{lexeme}"
                for fid, frame in frames.items():
                    add(lang, fill(frame, X=lexeme), labels, cat, [lex_key, f"{lang}.frame.{cat}:{fid}"])
                clause = rng.choice(complaints[lang])
                fid = rng.choice(sorted(MIX_FRAMES[lang]))
                add(lang, fill(MIX_FRAMES[lang][fid], C=clause, X=lexeme), labels, cat,
                    [f"{lang}.complaint:{clause}", lex_key, f"{lang}.frame.mix:{fid}"])
            for item in NEW.NEGATIVES[cat][lang]:
                neg_key = f"{lang}.{cat}_negative:{item}"
                for fid, frame in NEW.NEG_FRAMES[lang].items():
                    add(lang, fill(frame, X=item), set(), f"{cat}_negative",
                        [neg_key, f"{lang}.frame.negative:{fid}"])
                for fid in rng.sample(sorted(frames), 3):
                    add(lang, fill(frames[fid], X=item), set(), f"{cat}_negative",
                        [neg_key, f"{lang}.frame.{cat}:{fid}"])
        # Legitimate complaints and ordinary call talk in the new categories' frames too ("I'm
        # telling you, I want a refund", "..., do you understand"): about as many negatives as
        # lexemes per frame, so the frames carry the caller's temper, not the abuse. (The first
        # v2 build, with one negative per frame use, scored "I want a refund." coercion 0.87.)
        for lang in ("en", "ja"):
            frames = NEW.FRAMES[cat][lang]
            for pool, kind, items in benign[lang]:
                for clause in items:
                    fid = rng.choice(sorted(frames))
                    add(lang, fill(frames[fid], X=clause), set(), kind,
                        [f"{lang}.{pool}:{clause}", f"{lang}.frame.{cat}:{fid}"])
    return rows


# Strong swearing (profanity = 卑語, whatever its target): labelled wherever it occurs, so "you
# fucking idiot" is insult+profanity and "this fucking router" profanity alone. Mild expletives
# (damn, hell, bloody, crap) are not profanity here. Kana くそ is not matched: it is inside
# やくそく (約束) in kana readings.
EN_PROFANITY = re.compile(
    r"\b(?:(?:mother|cluster)?f(?:u|\*)(?:c|\*)(?:k|\*)\w*|f\*{3}\w*|fuckin|(?:bull|horse)?sh(?:i|\*)t\w*|s\*\*\*"
    r"|goddamn\w*|cunt\w*|a(?:ss|\*\*)hole\w*|bitch\w*|b\*{4}|bastard\w*|dickhead\w*|twat\w*"
    r"|wank\w*|bollocks)", re.IGNORECASE)
JA_PROFANITY = re.compile(r"クソ|糞|畜生|ちくしょう|チクショウ|くそっ|くそったれ|くそが")


def is_profane(text: str, lang: str) -> bool:
    return bool((EN_PROFANITY if lang == "en" else JA_PROFANITY).search(text))


def label_profanity(row: Row) -> None:
    if row.profanity == 0 and is_profane(row.text, row.lang):
        row.profanity = 1


def add_asr_variants(rows: list[Row], rng: random.Random) -> list[Row]:
    kana = _Kana()
    out: list[Row] = []
    for row in rows:
        out.append(row)
        for _ in range(4):  # a variant must differ from its source after normalisation
            text = asr_en(row.text, rng) if row.lang == "en" else asr_ja(row.text, rng, kana)
            if normalize_text(text) and normalize_text(text) != normalize_text(row.text):
                out.append(dataclasses.replace(row, text=text, keys=list(row.keys), variant="asr"))
                break
    return out


def load_jtd(path: Path) -> list[Row]:
    """Japanese-toxic-dataset rows: majority Not Toxic -> negatives; majority toxic -> sanity."""
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            votes = int(rec["annotation_num"])
            not_toxic = int(rec["Not Toxic"])
            toxic = int(rec["Toxic"]) + int(rec["Very Toxic"])
            key = [f"jtd:{rec['id']}"]
            if toxic == 0 and not_toxic * 2 > votes:
                rows.append(Row("ja", 0, 0, "jtd_not_toxic", rec["text"], key, source="jtd"))
            elif toxic * 2 >= votes:
                unlabelled = dict.fromkeys(CATEGORIES[2:], -1)
                rows.append(Row("ja", -1, -1, "jtd_toxic", rec["text"], key, source="jtd",
                                split="sanity", **unlabelled))
    return rows


# --------------------------------------------------------------------------------------------
# Courtesies and the fragments Whisper hands over for noise
# --------------------------------------------------------------------------------------------

# The commonest utterances of all, said on almost every call, and what faster-whisper writes for
# a cough or line noise ("Thank you.", "you", "Bye."). v2 without them scored a bare "Thank you."
# insult 0.64 and "You." insult 0.99: with three or four n-grams each, a short line is decided by
# whichever n-gram the model saw most, and " you" is in nearly every insult. Kept to a pool of
# their own (own random stream, appended last) so the rest of the corpus is unchanged.
EN_COURTESIES = [
    "you", "thank you", "thank you so much", "thank you very much", "thank you, bye",
    "thank you, goodbye", "okay, thank you", "alright, thank you", "yes, thank you", "no, thank you",
    "thank you, thank you", "oh, thank you", "great, thank you", "perfect, thank you",
    "thank you for your help", "thank you for your time", "thank you again", "thanks a lot",
    "thanks again", "thanks, bye", "bye bye", "bye now", "see you", "see you later",
    "talk to you later", "I'll let you go", "nice talking to you", "you too, bye", "and you",
    "how are you", "what about you", "hello", "hello, hello", "hello, are you there",
    "can you hear me", "can you hear me now", "I can't hear you", "I hear you", "you know",
    "you see", "you mean", "do you", "did you", "can you", "could you", "would you", "will you",
    "you did", "you do", "you are", "you have", "you can", "you said", "yes, you", "thank you, you too",
    "thank you, you've been very helpful", "okay, I see, thank you", "mm-hmm", "uh-huh", "hmm",
    "oh", "ah", "so", "yeah", "okay", "okay, bye", "I'm sorry", "sorry, what", "pardon me",
    # Openings of ordinary sentences, as a partial transcript or a clipped segment gives them:
    # "I will be" scored threat 0.97, "you did" insult 1.00 (an interim transcript alerts at
    # three words). The abusive lexemes that follow such openings are what must decide.
    "I will", "I will be", "I will be there", "I will be home", "I will be waiting", "I will wait",
    "I will check", "I will call again", "I will do that", "I will try", "I will pay", "I will come",
    "I will come back", "I will find it", "I will send it", "will be delivered", "it will be",
    "it will be fine", "that will be all", "that will be great", "we will see", "you will",
    "you will see", "you will get it", "they will", "he will be", "she will call", "I'll be there",
    "I'll be home", "I'll do it", "I'll wait", "I'll try", "I am going to", "I'm going to be",
    "it's going to be", "I know", "I know that", "I know where it is", "I know what you mean",
    "you are", "you were", "are you", "were you", "did you", "you did that", "you said that",
    "you told me", "you sent it", "I hear you", "watch", "wait", "look", "listen", "come on",
    "you guys", "your", "your company", "your name", "what's your name", "who are you",
]
JA_COURTESIES = [
    "ありがとうございます", "はい、ありがとうございます", "どうもありがとうございます",
    "ありがとうございました、失礼します", "お電話ありがとうございました", "失礼いたします",
    "はい、失礼します", "では失礼します", "もしもし", "もしもし、聞こえますか", "聞こえません",
    "はい、はい、はい", "ええ、ええ", "あ、はい", "どうも", "すいません", "はい、わかりました",
    "はい、お願いします", "あなたは", "あなたも", "お前は", "あんたは", "君は", "ありがとう、じゃあね",
]
FRAGMENT_RATE = 0.25  # share of the negative English sentences that also give a fragment


def fragments_of(rows: list[Row], rng: random.Random) -> list[Row]:
    """The first two to five words of some negative English sentences, as negatives with the
    source's keys (so a fragment lands in its sentence's split): what an interim transcript or
    a segment cut short by the VAD hands the classifier."""
    out = []
    for row in rows:
        if row.lang != "en" or any(row.labels()):
            continue
        words = row.text.split()
        if len(words) < 4 or rng.random() >= FRAGMENT_RATE:
            continue
        prefix = " ".join(words[: rng.randint(2, min(5, len(words) - 1))]).rstrip(",.!?")
        out.append(dataclasses.replace(row, text=prefix, keys=list(row.keys), kind="fragment"))
    return out


# Always in train: the lines a model must never get wrong (whole keys, so the same text in the
# "short" pool keeps its split).
PINNED_KEYS = {f"en.courtesy:{x}" for x in ("you", "thank you", "thank you very much", "thank you, bye",
                                              "bye bye", "hello", "okay, thank you", "thank you so much")}
PINNED_KEYS |= {f"ja.courtesy:{x}" for x in ("ありがとうございます", "もしもし", "失礼いたします")}


def build_courtesies(rng: random.Random) -> list[Row]:
    """Each courtesy bare, as Whisper writes it, and in three sampled surfaces (fillers, tails)."""
    rows: list[Row] = []
    for lang, items, surface in (("en", EN_COURTESIES, _en_surface), ("ja", JA_COURTESIES, _ja_surface)):
        for item in items:
            keys = [f"{lang}.courtesy:{item}"]
            bare = (item[0].upper() + item[1:] + rng.choice([".", ".", "?", "!"])) if lang == "en" else item + "。"
            rows.append(Row(lang, 0, 0, "ordinary", bare, keys))
            for _ in range(3):
                rows.append(Row(lang, 0, 0, "ordinary", surface(item, rng), list(keys)))
    return rows


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------

def _digest(key: str) -> str:
    return hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()


def assign_key_splits(keys: Iterable[str]) -> dict[str, str]:
    pools: dict[str, list[str]] = {}
    for key in set(keys):
        pools.setdefault(key.split(":", 1)[0], []).append(key)
    result = {}
    for pool_keys in pools.values():
        movable = sorted((k for k in pool_keys if k.split(":", 1)[1] not in PINNED and k not in PINNED_KEYS),
                         key=_digest)
        n_test = max(1, round(len(pool_keys) * TEST_FRACTION))
        n_val = max(1, round(len(pool_keys) * VAL_FRACTION))
        for i, key in enumerate(movable):
            result[key] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
        result.update({k: "train" for k in pool_keys if k not in result})
    return result


def split_rows(rows: list[Row]) -> None:
    splits = assign_key_splits(k for r in rows if not r.split for k in r.keys)
    for row in rows:
        if row.split:
            continue
        held = [k for k in row.keys if splits[k] != "train"]
        test = [k for k in held if splits[k] == "test"]
        row.split = "test" if test else "val" if held else "train"
        reasons = {("frame" if ".frame." in k else "jtd" if k.startswith("jtd:") else "lexeme")
                   for k in (test or held)}
        row.holdout = "+".join(sorted(reasons))


def fixture_texts() -> set[str]:
    texts = set()
    for path in sorted(FIXTURES.glob("*.json")):
        for utt in json.loads(path.read_text(encoding="utf-8")).get("utterances", []):
            texts.add(normalize_text(utt["text"]))
    return texts


def natural_texts() -> set[str]:
    """Normalised texts of the hand-written natural evaluation sets (natural_*.csv): never generated."""
    texts = set()
    for path in sorted(HERE.glob("natural_*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for rec in csv.DictReader(line for line in f if not line.startswith("#")):
                texts.add(normalize_text(rec["text"]))
    return texts


def dedupe(rows: list[Row]) -> tuple[list[Row], dict[str, int]]:
    """Drop exact normalised duplicates, label conflicts, leaks into val/test, fixture text and
    text of the natural evaluation sets."""
    reserved = fixture_texts()
    natural = natural_texts()
    dropped = {"duplicate": 0, "conflict": 0, "leak": 0, "fixture": 0, "natural": 0, "empty": 0}
    labels: dict[str, set[tuple[int, ...]]] = {}
    for row in rows:
        labels.setdefault(normalize_text(row.text), set()).add(row.labels())
    train_texts = {normalize_text(r.text) for r in rows if r.split == "train"}
    seen: set[str] = set()
    kept = []
    for row in rows:
        norm = normalize_text(row.text)
        reason = ("empty" if not norm else "fixture" if norm in reserved
                  else "natural" if norm in natural
                  else "conflict" if len(labels[norm]) > 1
                  else "duplicate" if norm in seen
                  else "leak" if row.split in ("val", "test") and norm in train_texts else None)
        if reason:
            dropped[reason] += 1
            continue
        seen.add(norm)
        kept.append(row)
    return kept, dropped


def generate(jtd_path: Path | None = DEFAULT_JTD) -> tuple[list[Row], dict[str, int]]:
    rng = random.Random(SEED)
    rows = build_english(rng) + build_japanese(rng) + build_new_categories(rng)
    rows += build_courtesies(random.Random(SEED + 1))
    for row in rows:  # before the ASR variants, which inherit it ("f***" masking included)
        label_profanity(row)
    rows += fragments_of(rows, random.Random(SEED + 2))
    rows = add_asr_variants(rows, rng)
    if jtd_path is not None:
        rows += load_jtd(jtd_path)
    split_rows(rows)
    return dedupe(rows)


def write_corpus(rows: list[Row], path: Path = CORPUS) -> str:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i, r in enumerate(rows):
            writer.writerow([f"{r.lang}{i:05d}", r.split, r.holdout, r.lang, *r.labels(),
                             r.kind, r.variant, r.source, "|".join(r.keys), r.text])
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jtd", type=Path, default=DEFAULT_JTD,
                        help="japanese-toxic-dataset subset.csv (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args()
    if not args.jtd.exists():
        sys.exit(f"japanese-toxic-dataset not found at {args.jtd}: pass --jtd PATH/subset.csv")
    rows, dropped = generate(args.jtd)
    digest = write_corpus(rows, args.out)
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(r.split, r.lang)] = counts.get((r.split, r.lang), 0) + 1
    print(f"wrote {len(rows)} rows to {args.out} (sha256 {digest})")
    print("dropped:", dropped)
    for key in sorted(counts):
        print(f"  {key[0]:6s} {key[1]}: {counts[key]}")


if __name__ == "__main__":
    main()
