"""transcript.html: the call as a printable document, labels in English and Japanese.

Every value that came from a carrier, a caller or a supervisor (metadata, transcript text,
names, notes) is HTML-escaped: the document must show what was said, never run it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

CATEGORY_LABELS = {
    "insult": "Insult / 侮辱・暴言",
    "threat": "Threat / 脅迫",
    "exposure": "Exposure / 晒し・個人情報の要求",
    "coercion": "Coercion / 土下座・過剰な要求",
    "discrimination": "Discrimination / 差別",
    "sexual": "Sexual / 性的な言動",
    "profanity": "Profanity / 暴言(卑語)",
    "shouting": "Shouting / 威圧的な言動",
    "prolonged": "Prolonged call / 拘束",
    "repeat_caller": "Repeat caller / 執拗な電話",
}
STATUS_LABELS = {
    "open": "Open / 未対応",
    "acknowledged": "Acknowledged / 確認済み",
    "escalated": "Escalated / エスカレーション",
    "false_alarm": "False alarm / 誤検知",
}
ACTION_LABELS = {
    "acknowledge": "Acknowledge / 確認",
    "escalate": "Escalate / エスカレーション",
    "false_alarm": "False alarm / 誤検知",
}
TRACK_LABELS = {"caller": "Caller / 発信者", "agent": "Agent / 担当者"}

_STYLE = """
body { font-family: system-ui, "Hiragino Sans", "Noto Sans JP", "Yu Gothic", sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; } table.facts th { width: 14em; }
tr.flagged td { background: #fde2e2; font-weight: 600; }
td.time { white-space: nowrap; }
.mono { font-family: ui-monospace, monospace; font-size: 0.85em; word-break: break-all; }
@media print { body { margin: 0; } tr { break-inside: avoid; } th { background: #eee !important; }
  tr.flagged td { background: #fde2e2 !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


def _e(value: Any) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def _when(iso: str | None) -> str:
    """An ISO timestamp as people read it: 2025-04-01 09:30:12 UTC."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return escape(iso)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(float(seconds), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _scores(scores: dict[str, float], top: int = 3) -> str:
    best = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return ", ".join(f"{escape(str(c))} {float(s):.2f}" for c, s in best) or "—"


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f"<p>{empty}</p>"
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _facts(call: dict[str, Any], exported: dict[str, Any]) -> str:
    sealed = call.get("evidence") or {}
    seal = (f"{_when(sealed.get('sealed_at'))}<br>" + "<br>".join(
        f'<span class="mono">{_e(name)}: {_e(digest)}</span>' for name, digest in (sealed.get("files") or {}).items()
    )) if sealed else "Not sealed / 封印なし"
    rows = [
        ("Call ID / 通話ID", f'<span class="mono">{_e(call.get("id"))}</span>'),
        ("Carrier / 通信事業者", _e(call.get("carrier"))),
        ("Caller number / 発信者番号", _e(call.get("caller_number"))),
        ("Agent / 担当者", _e(call.get("agent"))),
        ("Started / 開始日時", _when(call.get("started_at"))),
        ("Ended / 終了日時", _when(call.get("ended_at"))),
        ("Duration / 通話時間", _e(None if call.get("duration") is None else f"{call['duration']:.1f} s")),
        ("Status / 状態", f"{_e(call.get('status'))} ({_e(call.get('end_reason'))})"),
        ("Language / 言語", _e(call.get("language"))),
        ("Ad source / 広告元", _e(call.get("ad_source"))),
        ("Campaign / キャンペーン", _e(call.get("campaign"))),
        ("Tracking number / 計測用番号", _e(call.get("tracking_number"))),
        ("Highest score / 最大スコア", f"{float(call.get('max_score') or 0.0):.2f}"),
        ("Alerts / アラート件数", _e(call.get("alert_count"))),
        ("Recordings sealed / 録音の封印", seal),
        ("Exported / 出力日時", f"{_when(exported.get('exported_at'))} — {_e(exported.get('exported_by'))}"),
    ]
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _utterances(segments: list[dict[str, Any]]) -> str:
    rows = []
    for s in segments:
        flagged = bool(s.get("abusive"))
        row_class = ' class="flagged"' if flagged else ""
        rows.append(
            f"<tr{row_class}>"
            f'<td class="time">{_clock(s.get("start"))}–{_clock(s.get("end"))}</td>'
            f"<td>{TRACK_LABELS.get(s.get('track'), _e(s.get('track')))}</td>"
            f"<td>{_e(s.get('text'))}</td><td>{_scores(s.get('scores') or {})}</td>"
            f"<td>{'⚠ Flagged / 要注意' if flagged else ''}</td></tr>"
        )
    return _table(["Time / 時刻", "Speaker / 話者", "Text / 発言", "Scores / スコア", "Flag / 判定"], rows,
                  "No utterances / 発言なし")


def _alerts(alerts: list[dict[str, Any]]) -> str:
    rows = [
        f'<tr><td class="time">{_clock(a.get("start"))}–{_clock(a.get("end"))}</td>'
        f"<td>{CATEGORY_LABELS.get(a.get('category'), _e(a.get('category')))}</td>"
        f"<td>{_e(a.get('severity'))}</td><td>{float(a.get('score') or 0.0):.2f}</td><td>{_e(a.get('rule'))}</td>"
        f"<td>{_e(a.get('text'))}</td><td>{STATUS_LABELS.get(a.get('status'), _e(a.get('status')))}</td></tr>"
        for a in alerts
    ]
    return _table(["Time / 時刻", "Category / 種別", "Severity / 重大度", "Score / スコア", "Rule / 検出",
                   "Text / 発言", "Status / 対応状況"], rows, "No alerts / アラートなし")


def _actions(actions: list[dict[str, Any]]) -> str:
    rows = [
        f"<tr><td>{_when(a.get('at'))}</td><td class=\"mono\">{_e(a.get('alert_id'))}</td>"
        f"<td>{ACTION_LABELS.get(a.get('action'), _e(a.get('action')))}</td><td>{_e(a.get('by'))}</td>"
        f"<td>{_e(a.get('note'))}</td></tr>"
        for a in actions
    ]
    return _table(["At / 日時", "Alert / アラート", "Action / 対応", "By / 対応者", "Note / メモ"], rows,
                  "No supervisor actions / 対応記録なし")


def transcript_html(call: dict[str, Any], exported: dict[str, Any]) -> str:
    """The printable record of a stored call (CallStore.get_call); `exported`: exported_at, exported_by."""
    title = f"Call record / 通話記録 — {_e(call.get('id'))}"
    return (
        f'<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f"<h2>Call / 通話情報</h2>\n{_facts(call, exported)}\n"
        f"<h2>Transcript / 文字起こし</h2>\n{_utterances(call.get('segments') or [])}\n"
        f"<h2>Alerts / アラート</h2>\n{_alerts(call.get('alerts') or [])}\n"
        f"<h2>Supervisor actions / 管理者の対応</h2>\n{_actions(call.get('actions') or [])}\n"
        "<p><small>Transcripts are machine-generated (ASR) and may contain errors; the recordings are the "
        "record. 文字起こしは自動生成のため誤りを含む場合があります。正式な記録は録音です。 File hashes: manifest.json "
        "(<code>stream-server verify</code>).</small></p>\n</body></html>\n"
    )
