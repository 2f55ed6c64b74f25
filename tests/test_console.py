"""The supervisor console in a real headless Chromium (Playwright driving the system browser),
against a real server with real Whisper, fed fixture calls over the Twilio socket.

One server for the module: a calm call from a Google ad whose caller-supplied strings carry
HTML payloads is streamed first, then an abusive call from a Yahoo campaign is streamed in
real time while the live board watches. The tests then act as a supervisor and a QA reviewer
would: acknowledge, replay, search, read the report.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fixture_calls import load_call
from live_server import (API_TOKEN, CHROMIUM, TWILIO_AUTH_TOKEN, free_port, needs_chromium, start_server,
                         stop_server, wait_for_call_end)

from stream_server.simulator import SimulatedCall, stream_call
from stream_server.store.repository import CallStore

pytestmark = needs_chromium

# benchmarks/RESULTS.md: p95 alert latency <= 2.5 s after the abusive utterance ends.
ALERT_LATENCY_BUDGET_S = 2.5
SUPERVISOR = "supervisor-sato"
SCREENSHOTS = os.environ.get("STREAM_SERVER_SCREENSHOT_DIR")  # docs/screenshots when refreshing the README's
HOSTILE_AGENT = '<img src=x onerror="window.__xss=1">'
HOSTILE_TEXT = '<script>window.__xss=2</script><b onmouseover="window.__xss=3">hover</b>'

ABUSIVE_META = {"from": "+817098765403", "utm_source": "yahoo", "utm_campaign": "mobile_plan_brand",
                "tracking_number": "+81120555003", "agent": "agent-emma"}
# The same number calls twice: the second (abusive) call is a repeat caller.
CALM_META = {"from": "+817098765403", "utm_source": "google", "utm_campaign": "fiber_spring_search",
             "tracking_number": "+81501230001", "agent": HOSTILE_AGENT}
CALL_RULES = {"STREAM_SERVER_PROLONGED_CALL_MINUTES": "0.25", "STREAM_SERVER_REPEAT_CALLS": "2"}


def dead_webhook() -> dict[str, str]:
    """A webhook target nobody listens on, tried once: its failures must show on the board."""
    target = {"name": "ops-json", "url": f"http://127.0.0.1:{free_port()}/hook", "format": "json",
              "secret": "webhook-secret", "min_severity": "low"}
    return {"STREAM_SERVER_WEBHOOKS": json.dumps([target]), "STREAM_SERVER_WEBHOOK_ATTEMPTS": "1"}


def fixture_call(name: str, metadata: dict[str, str]) -> SimulatedCall:
    call = load_call(name)
    return SimulatedCall(call.ulaw("caller"), call.ulaw("agent"), dict(metadata))


def in_thread(coroutine):
    """Run a coroutine to completion on a thread of its own: Playwright's sync API keeps an
    event loop running on the test's thread."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the test
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def stream(server, call: SimulatedCall, speed: float = 1.0):
    url = f"ws://127.0.0.1:{server.port}/v1/media/twilio"
    return in_thread(stream_call(url, call, speed=speed, auth_token=TWILIO_AUTH_TOKEN))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("console"), {"STREAM_SERVER_UI_LANGUAGE": "en", **CALL_RULES, **dead_webhook()})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def calm_call(server) -> dict:
    """A finished calm call, plus a transcript line and an alert whose text is an HTML payload
    (written to the server's own database, as a hostile transcript would be)."""
    call = fixture_call("en_calm", CALM_META)
    stream(server, call, speed=2.0)
    stored = in_thread(wait_for_call_end(server, stream_id=call.stream_sid, timeout=120))
    store = CallStore(f"sqlite:///{server.data_dir / 'stream_server.db'}")
    try:
        store.add_segment(stored["id"], "caller", 27.0, 28.0, HOSTILE_TEXT, "en", {"insult": 0.01}, False)
    finally:
        store.close()
    return stored


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.http)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors  # no page may throw


def sign_in(page, path: str = "/") -> None:
    page.goto(path)
    page.fill("#signin-token", API_TOKEN)
    page.fill("#signin-name", SUPERVISOR)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="hidden")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def live_alert(browser, server, calm_call) -> dict:
    """Stream the abusive call in real time while the board is open; note when each alert
    appeared on the board (the page's own clock) and when its utterance ended."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.http)
    page = context.new_page()
    sign_in(page)
    page.wait_for_selector("body[data-feed=live]")
    page.evaluate("""() => {
        window.__seen = {};
        new MutationObserver(() => {
            for (const li of document.querySelectorAll('#alerts li.alert')) {
                window.__seen[li.dataset.alertId] = window.__seen[li.dataset.alertId] || Date.now() / 1000;
            }
        }).observe(document.getElementById('alerts'), {childList: true, subtree: true});
    }""")
    call = fixture_call("en_abusive", ABUSIVE_META)
    result: dict = {}
    streamer = threading.Thread(target=lambda: result.update(run=stream(server, call)))
    streamer.start()
    page.wait_for_selector("#live-calls tbody tr")  # the call is on the board while it runs
    page.click("#live-calls tbody tr")  # follow its transcript
    live_row = page.inner_text("#live-calls tbody tr")
    page.wait_for_selector("#alerts li.alert[data-category=insult]", timeout=60_000)
    # 15 s in (STREAM_SERVER_PROLONGED_CALL_MINUTES=0.25) the call is long; it is the number's second call
    page.wait_for_selector("#live-calls tr .flag-prolonged", timeout=30_000)
    flags = page.inner_text("#live-calls tbody tr .flags")
    page.wait_for_selector("#live-transcript li.track-agent")
    page.wait_for_selector("#banner:not([hidden])")  # the dead webhook gave up on an alert
    banner = page.inner_text("#banner")
    screenshot(page, "board")
    streamer.join(120)
    stored = in_thread(wait_for_call_end(server, stream_id=call.stream_sid, timeout=120))
    seen = page.evaluate("() => window.__seen")
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {API_TOKEN}"}) as http:
        alerts = http.get("/v1/alerts", params={"call_id": stored["id"]}).json()
    text_alerts = sorted((a for a in alerts if a["rule"] in ("text", "text+voice")), key=lambda a: a["start"])
    yield {"page": page, "call": stored, "alerts": alerts, "text_alerts": text_alerts, "seen": seen,
           "started_at": result["run"].started_at, "live_row": live_row, "flags": flags, "banner": banner}
    context.close()


def test_alert_appears_on_the_live_board_within_the_latency_budget(live_alert):
    text_alerts = live_alert["text_alerts"]
    assert text_alerts, live_alert["alerts"]
    first = min(text_alerts, key=lambda a: a["end"])
    spoken_end = live_alert["started_at"] + first["end"]  # the stream is paced from its first frame
    latency = live_alert["seen"][first["id"]] - spoken_end
    print(f"alert on the board {latency:.2f} s after '{first['text']}' ended")
    assert latency <= ALERT_LATENCY_BUDGET_S
    assert "+817098765403" in live_alert["live_row"] and "yahoo" in live_alert["live_row"]


def test_the_board_shows_the_offending_sentence_and_cues_the_supervisor(live_alert):
    page = live_alert["page"]
    insult = live_alert["text_alerts"][0]
    item = page.locator(f"#alerts li[data-alert-id='{insult['id']}']")
    assert insult["text"] in item.inner_text() and "Insult" in item.inner_text()
    assert "mobile_plan_brand" in item.inner_text()
    assert int(page.get_attribute("body", "data-cues") or 0) >= len(live_alert["alerts"])  # a sound per alert
    assert page.title().startswith("(")  # unseen alerts counted in the tab title
    assert page.locator("#live-transcript li.track-caller").count() >= 1  # the followed call's words


def test_long_calls_and_repeat_callers_are_flagged_on_the_board(live_alert):
    assert "Long call" in live_alert["flags"] and "Repeat caller" in live_alert["flags"]
    categories = {a["category"] for a in live_alert["alerts"]}
    assert {"prolonged", "repeat_caller"} <= categories


def test_a_webhook_that_gave_up_shows_on_the_board(live_alert):
    assert "Notification failed" in live_alert["banner"] and "ops-json" in live_alert["banner"]


def test_supervisor_acknowledges_and_escalates_and_both_are_recorded(live_alert, server):
    page = live_alert["page"]
    first, second = live_alert["text_alerts"][0], live_alert["text_alerts"][-1]
    page.click(f"#alerts li[data-alert-id='{first['id']}'] button.ack")
    page.wait_for_selector(f"#alerts li[data-alert-id='{first['id']}'].done")
    page.click(f"#alerts li[data-alert-id='{second['id']}'] button.escalate")
    page.fill("dialog.escalate textarea", "caller threatened the agent; manager informed")
    page.click("dialog.escalate button.escalate-send")
    page.wait_for_selector(f"#alerts li[data-alert-id='{second['id']}'] .status-escalated")
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {API_TOKEN}"}) as http:
        detail = http.get(f"/v1/calls/{live_alert['call']['id']}").json()
    by_alert = {a["id"]: a for a in detail["alerts"]}
    assert by_alert[first["id"]]["status"] == "acknowledged"
    assert by_alert[first["id"]]["acknowledged_by"] == SUPERVISOR
    assert by_alert[second["id"]]["status"] == "escalated"
    actions = [(a["alert_id"], a["action"], a["by"]) for a in detail["actions"]]
    assert (first["id"], "acknowledge", SUPERVISOR) in actions and (second["id"], "escalate", SUPERVISOR) in actions
    assert any(a["note"] == "caller threatened the agent; manager informed" for a in detail["actions"])


def test_call_page_plays_and_a_click_on_a_flagged_sentence_seeks_there(page, live_alert):
    call = live_alert["call"]
    sign_in(page, f"/calls/{call['id']}")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    page.evaluate("() => document.getElementById('player').play()")
    page.wait_for_function("() => document.getElementById('player').currentTime > 0.2")
    flagged = page.locator("#transcript li.abusive").last
    start = float(flagged.get_attribute("data-start"))
    flagged.click()
    page.wait_for_function(f"() => Math.abs(document.getElementById('player').currentTime - {start}) < 0.6")
    page.wait_for_selector("#transcript li.abusive.current")
    assert page.locator("#timeline .flagged").count() == page.locator("#transcript li.abusive.track-caller").count() >= 1
    assert page.locator("#timeline .alert-mark").count() == len(live_alert["alerts"])
    assert page.locator("#timeline polyline.loudness").count() == 2  # caller and agent curves
    assert page.locator("#transcript li.track-agent").count() >= 1  # caller and agent told apart
    page.check("#show-scores")
    assert page.locator("#transcript li.abusive .scores").first.is_visible()
    screenshot(page, "call")


def test_search_by_ad_source(page, live_alert, calm_call):
    sign_in(page, "/calls")
    page.fill("input[name=ad_source]", "yahoo")
    page.click("#search-submit")
    page.wait_for_function("() => document.body.dataset.results !== undefined && location.search.includes('yahoo')")
    page.wait_for_selector(f"#results tr[data-call-id='{live_alert['call']['id']}']")
    ids = page.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => r.dataset.callId)")
    assert live_alert["call"]["id"] in ids and calm_call["id"] not in ids
    assert set(page.eval_on_selector_all("#results td.ad-source", "cells => cells.map(c => c.textContent)")) == {"yahoo"}
    screenshot(page, "search")


def test_report_ranks_the_campaign_with_the_abusive_call_first(page, live_alert, calm_call):
    sign_in(page, "/reports")
    page.wait_for_selector("body[data-ready=true]")
    first_row = page.locator("#report-ad-sources tbody tr").first.inner_text()
    assert "yahoo" in first_row and "mobile_plan_brand" in first_row
    assert "fiber_spring_search" in page.locator("#report-ad-sources tbody tr").nth(1).inner_text()
    assert page.locator("#chart-ad-sources g.bar").first.get_attribute("data-label") == "yahoo / mobile_plan_brand"
    assert "agent-emma" in page.locator("#report-agents tbody tr").first.inner_text()
    screenshot(page, "reports")


def test_caller_controlled_html_is_shown_as_text(page, calm_call):
    sign_in(page, f"/calls/{calm_call['id']}")
    page.wait_for_selector("body[data-ready=true]")
    assert HOSTILE_AGENT in page.inner_text("#facts")
    line = page.locator("#transcript li", has_text="window.__xss=2")
    assert HOSTILE_TEXT in line.inner_text()
    line.locator(".text").hover()
    assert page.locator("#transcript script, #transcript b, #facts img").count() == 0
    assert page.evaluate("() => window.__xss") is None
    page.goto("/calls")  # signed in already: the token is kept for the next page
    page.wait_for_selector(f"#results tr[data-call-id='{calm_call['id']}']")
    assert HOSTILE_AGENT in page.inner_text(f"#results tr[data-call-id='{calm_call['id']}']")
    assert page.locator("#results img").count() == 0 and page.evaluate("() => window.__xss") is None


def test_console_switches_to_japanese_and_shows_times_in_the_configured_zone(page, live_alert):
    sign_in(page, f"/calls/{live_alert['call']['id']}")
    page.wait_for_selector("body[data-ready=true]")
    assert "Caller" in page.inner_text("#facts")
    page.click("#lang-switch")
    assert "発信者番号" in page.inner_text("#facts")
    assert page.get_attribute("html", "lang") == "ja"
    assert "Asia/Tokyo" in page.inner_text("header")
    started = page.locator("#facts div", has_text="開始").inner_text()
    in_tokyo = datetime.fromisoformat(live_alert["call"]["started_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert in_tokyo.strftime("%Y/%m/%d %H:%M:%S") in started
    screenshot(page, "call-ja")


def test_pages_are_sent_with_a_content_security_policy(server):
    for path in ("/", "/calls", "/calls/whatever", "/reports"):
        response = httpx.get(server.http + path)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    config = httpx.get(server.http + "/v1/console/config").json()
    assert config["auth_required"] is True and config["timezone"] == "Asia/Tokyo" and config["language"] == "en"


def user_token(server, name: str, role: str, tenant: str | None = None) -> str:
    """A user made the way an admin would (`stream-server users add` / `tokens create` write these rows)."""
    from stream_server.store.access import AccessStore

    store = CallStore(f"sqlite:///{server.data_dir / 'stream_server.db'}")
    try:
        people = AccessStore(store)
        people.add_user(name, role, tenant)
        return people.create_token(name, "console test")[0]
    finally:
        store.close()


def test_a_user_signs_in_with_their_own_token_and_the_feed_url_carries_no_token(page, live_alert, server):
    token = user_token(server, "kimura", "supervisor")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto("/")
    page.fill("#signin-token", token)  # no name: the token says who this is
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="hidden")
    page.wait_for_selector("body[data-feed=live]")
    assert page.inner_text("#who") == "kimura (supervisor)"
    assert sockets and all("token" not in url for url in sockets), sockets


def test_a_user_scoped_to_another_tenant_finds_none_of_these_calls(page, live_alert, calm_call, server):
    token = user_token(server, "other-tenant-qa", "qa", tenant="globex")
    page.goto("/calls")
    page.fill("#signin-token", token)
    page.click("#signin-submit")
    page.wait_for_selector("#signin", state="hidden")
    page.wait_for_selector("body[data-results]")
    assert page.get_attribute("body", "data-results") == "0"
    assert page.locator("#results tr[data-call-id]").count() == 0
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get(f"/v1/calls/{live_alert['call']['id']}").status_code == 404
        assert http.get(f"/v1/calls/{calm_call['id']}/recording.wav").status_code == 404
