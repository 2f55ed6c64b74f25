"""Per-category thresholds and severities from configuration reach the alert policy."""

import pytest
from pydantic import ValidationError

from stream_server.app import load_classifier, session_options
from stream_server.config import Settings


def test_per_category_thresholds_and_severities_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_SERVER_ALERT_THRESHOLDS", '{"insult": 0.75, "shouting": 0.8}')
    monkeypatch.setenv("STREAM_SERVER_ALERT_SEVERITIES", '{"profanity": "medium"}')
    settings = Settings(data_dir=tmp_path)
    classifier = load_classifier(settings)
    policy = session_options(settings, classifier).policy
    assert policy.threshold("insult") == 0.75
    assert policy.threshold("shouting") == 0.8
    assert policy.threshold("threat") == classifier.thresholds["threat"]  # the model's own
    assert policy.severity("profanity") == "medium"
    assert policy.severity("threat") == "high"  # the default for a category left alone


def test_the_specific_threshold_wins_over_the_blanket_one(tmp_path):
    settings = Settings(data_dir=tmp_path, alert_threshold=0.6, alert_thresholds={"threat": 0.9})
    policy = session_options(settings, load_classifier(settings)).policy
    assert policy.threshold("threat") == 0.9 and policy.threshold("insult") == 0.6


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("alert_thresholds", {"insluts": 0.5}, "unknown alert categories ['insluts']"),
        ("alert_thresholds", {"insult": 1.5}, "probabilities"),
        ("alert_severities", {"insult": "severe"}, "severe"),
    ],
)
def test_a_mistyped_category_threshold_or_severity_is_refused_at_start(tmp_path, field, value, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Settings(data_dir=tmp_path, **{field: value})
