"""Scores → alerts: thresholds, one alert per outburst, escalation, call rules."""

from stream_server.alerts.policy import AlertPolicy, AlertPolicyOptions
from stream_server.alerts.rules import (
    CallRuleOptions,
    prolonged_call_alert,
    repeat_caller_alert,
)

META = {"utm_source": "google", "utm_campaign": "spring", "from": "+81312345678"}


def policy(**kwargs) -> AlertPolicy:
    options = AlertPolicyOptions(thresholds={"insult": 0.6, "threat": 0.5}, cooldown_s=30.0, **kwargs)
    return AlertPolicy("call1", META, options)


def test_below_threshold_is_silent_and_above_alerts_with_call_metadata():
    p = policy()
    assert p.evaluate({"insult": 0.59, "threat": 0.1}, "meh", 1.0, 2.0) == []
    [alert] = p.evaluate({"insult": 0.7, "threat": 0.1}, "you idiot", 5.0, 6.5)
    assert (alert.call_id, alert.category, alert.text, alert.start, alert.end) == ("call1", "insult", "you idiot", 5.0, 6.5)
    assert alert.metadata == META
    assert alert.severity == "medium"
    body = alert.to_event()
    for key in ("id", "call_id", "category", "severity", "score", "text", "start", "end", "created_at", "metadata"):
        assert key in body


def test_partial_then_final_of_one_utterance_is_one_alert():
    p = policy()
    assert len(p.evaluate({"insult": 0.8}, "you useless", 10.0, 11.0)) == 1
    assert p.evaluate({"insult": 0.9}, "you useless idiot", 10.0, 12.0) == []


def test_cooldown_runs_from_the_end_of_the_outburst_and_escalates_on_return():
    p = policy()
    first = p.evaluate({"insult": 0.7}, "idiot", 10.0, 11.0)
    assert p.evaluate({"insult": 0.7}, "moron", 30.0, 31.0) == []  # same outburst continues
    assert p.evaluate({"insult": 0.7}, "fool", 55.0, 56.0) == []  # 24 s after the last insult
    again = p.evaluate({"insult": 0.7}, "idiot again", 90.0, 91.0)
    assert first[0].severity == "medium" and again[0].severity == "high"


def test_categories_cool_down_independently_and_threats_are_high():
    p = policy()
    assert [a.category for a in p.evaluate({"insult": 0.7}, "idiot", 1.0, 2.0)] == ["insult"]
    [threat] = p.evaluate({"insult": 0.7, "threat": 0.95}, "I will kill you idiot", 3.0, 5.0)
    assert threat.category == "threat" and threat.severity == "critical"  # high, raised for confidence


def test_agent_track_and_debris_text_never_alert():
    p = policy()
    assert p.evaluate({"insult": 0.99}, "idiot", 1.0, 2.0, track="agent") == []
    assert p.evaluate({"insult": 0.99}, "a", 1.0, 2.0) == []


def test_prolonged_call_rule():
    options = CallRuleOptions(prolonged_call_minutes=30)
    assert prolonged_call_alert("c", META, 29 * 60, options) is None
    alert = prolonged_call_alert("c", META, 30 * 60, options)
    assert alert.category == "prolonged" and alert.metadata == META
    assert prolonged_call_alert("c", META, 99 * 60, CallRuleOptions(prolonged_call_minutes=0)) is None


def test_repeat_caller_rule():
    options = CallRuleOptions(repeat_calls=3, repeat_window_hours=24)
    assert repeat_caller_alert("c", META, 2, options) is None
    alert = repeat_caller_alert("c", META, 3, options)
    assert alert.category == "repeat_caller" and "3 calls" in alert.text


def test_call_rules_take_the_configured_severity():
    options = CallRuleOptions(prolonged_call_minutes=1, repeat_calls=2)
    severities = AlertPolicyOptions(severities={"prolonged": "high", "repeat_caller": "critical"})
    prolonged = prolonged_call_alert("c", META, 61, options, severities.severity("prolonged"))
    repeat = repeat_caller_alert("c", META, 2, options, severities.severity("repeat_caller"))
    assert (prolonged.severity, repeat.severity) == ("high", "critical")
    assert prolonged_call_alert("c", META, 61, options).severity == "medium"  # the default


def test_call_rule_alerts_name_their_rule():
    options = CallRuleOptions(prolonged_call_minutes=1, repeat_calls=2)
    assert prolonged_call_alert("c", META, 61, options).rule == "prolonged"
    assert repeat_caller_alert("c", META, 2, options).rule == "repeat_caller"


def test_a_short_interim_fragment_waits_for_its_final():
    """"Hi, I would like..." came out of a partial decode as "I will", which v1 scores as a
    threat: a fragment that short does not page anyone; the whole final decides."""
    p = policy()
    assert p.evaluate({"threat": 0.94}, "I will", 6.4, 7.4, partial=True) == []
    assert p.evaluate({"insult": 0.9}, "バカ", 8.0, 8.5, partial=True) == []
    assert len(p.evaluate({"insult": 0.9}, "you useless idiot", 10.0, 11.0, partial=True)) == 1
    assert len(p.evaluate({"insult": 0.9}, "役立たずの給料泥棒", 50.0, 51.0, partial=True)) == 1
    assert p.evaluate({"threat": 0.66}, "I will like to", 6.4, 7.6, partial=True) == []  # not sure enough
    assert len(p.evaluate({"threat": 0.94}, "I will", 6.4, 7.4)) == 1  # a final is judged as it is


def voice_policy(**kwargs) -> AlertPolicy:
    thresholds = {"insult": 0.6, "threat": 0.5, "profanity": 0.6, "shouting": 0.7}
    return AlertPolicy("call1", META, AlertPolicyOptions(thresholds=thresholds, cooldown_s=30.0, **kwargs))


def test_shouting_alone_alerts_as_shouting_from_the_voice_model():
    p = voice_policy()
    assert p.evaluate({"insult": 0.1, "shouting": 0.69}, "where is my order", 1.0, 3.0) == []
    [alert] = p.evaluate({"insult": 0.1, "shouting": 0.8}, "where is my order", 5.0, 7.0)
    assert (alert.category, alert.rule, alert.severity) == ("shouting", "voice", "medium")


def test_an_insult_shouted_is_one_alert_one_step_more_severe_than_either():
    calm, loud = voice_policy(), voice_policy()
    [said] = calm.evaluate({"insult": 0.7, "shouting": 0.2}, "you idiot", 5.0, 6.0)
    [shouted] = loud.evaluate({"insult": 0.7, "shouting": 0.8}, "you idiot", 5.0, 6.0)
    assert (said.category, said.severity, said.rule) == ("insult", "medium", "text")
    assert (shouted.category, shouted.severity, shouted.rule) == ("insult", "high", "text+voice")
    # The raised voice belonged to that outburst: shouting right after it is not a new alert.
    assert loud.evaluate({"insult": 0.1, "shouting": 0.8}, "and another thing", 8.0, 9.0) == []


def test_a_mid_utterance_shouting_window_alerts_and_its_final_does_not_repeat_it():
    p = voice_policy()
    assert p.evaluate_voice(0.5, "", 3.0, 4.5) == []
    [window] = p.evaluate_voice(0.85, "", 4.0, 5.5)
    assert (window.category, window.text, window.rule) == ("shouting", "", "voice")
    assert p.evaluate({"insult": 0.1, "shouting": 0.9}, "where is my order", 3.0, 7.0) == []
    assert p.evaluate_voice(0.95, "", 5.0, 6.5, track="agent") == []


def test_a_window_alerts_only_against_the_callers_own_voice_but_a_finished_utterance_always_can():
    p = voice_policy()
    assert p.evaluate_voice(0.9, "", 1.0, 2.5, window=True, own_baseline=False) == []
    [alert] = p.evaluate_voice(0.9, "where is it", 1.0, 3.0, own_baseline=False)
    assert alert.category == "shouting"


def test_swearing_inside_an_insult_is_the_insult_alone_but_swearing_alone_is_profanity_and_low():
    p = voice_policy()
    [insult] = p.evaluate({"insult": 0.8, "profanity": 0.95}, "you fucking idiot", 1.0, 2.0)
    assert insult.category == "insult"
    [swearing] = voice_policy().evaluate({"insult": 0.1, "profanity": 0.8}, "this fucking router", 1.0, 2.0)
    assert (swearing.category, swearing.severity) == ("profanity", "low")


def test_severities_per_category_come_from_configuration():
    p = voice_policy(severities={"profanity": "high"})
    [alert] = p.evaluate({"profanity": 0.8}, "this fucking router", 1.0, 2.0)
    assert alert.severity == "high"
    try:
        AlertPolicyOptions(severities={"insult": "severe"})
    except ValueError as e:
        assert "severe" in str(e)
    else:
        raise AssertionError("an unknown severity must be refused")
