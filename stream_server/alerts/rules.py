"""Call-level rules: signals no single utterance carries.

- prolonged call (拘束): the call has gone on for more than `prolonged_call_minutes`;
- repeat caller (継続的・執拗): the same number has called `repeat_calls` times within
  `repeat_window_hours`, this call included.
Repeated abuse within a call is handled by the policy's escalating severity.
"""

from __future__ import annotations

from dataclasses import dataclass

from .alert import BASE_SEVERITY, AbuseCategory, Alert


@dataclass(frozen=True)
class CallRuleOptions:
    prolonged_call_minutes: float = 30.0
    repeat_calls: int = 3
    repeat_window_hours: float = 24.0


def _call_alert(
    category: AbuseCategory, call_id: str, metadata: dict[str, str], text: str, end: float, severity: str | None
) -> Alert:
    return Alert(
        call_id=call_id,
        category=category,
        severity=severity or BASE_SEVERITY[category],
        score=1.0,
        text=text,
        start=0.0,
        end=end,
        metadata=metadata,
        rule=str(category),
    )


def prolonged_call_alert(
    call_id: str, metadata: dict[str, str], audio_time: float, options: CallRuleOptions, severity: str | None = None
) -> Alert | None:
    """`severity`: the configured one for `prolonged` (AlertPolicyOptions.severity); default BASE_SEVERITY."""
    limit = options.prolonged_call_minutes * 60.0
    if options.prolonged_call_minutes <= 0 or audio_time < limit:
        return None
    text = f"call longer than {options.prolonged_call_minutes:g} minutes"
    return _call_alert(AbuseCategory.PROLONGED_CALL, call_id, metadata, text, audio_time, severity)


def repeat_caller_alert(
    call_id: str, metadata: dict[str, str], recent_calls: int, options: CallRuleOptions, severity: str | None = None
) -> Alert | None:
    """`recent_calls` counts this number's calls in the window, this one included; `severity` as
    for prolonged_call_alert."""
    if options.repeat_calls <= 0 or recent_calls < options.repeat_calls:
        return None
    text = f"{recent_calls} calls from this number in {options.repeat_window_hours:g} h"
    return _call_alert(AbuseCategory.REPEAT_CALLER, call_id, metadata, text, 0.0, severity)
