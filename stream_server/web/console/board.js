// The live board: calls in progress, alerts as they arrive (with a sound and a flash), and the
// live transcript of the call a supervisor picks. Everything comes from the supervisor feed
// (/v1/supervisor/ws); the REST API fills in what happened before the page was opened.

import {
  adSource, alertActions, alertStatusText, apiJson, callerNumber, campaign, categoryLabel, clear, config,
  formatClock, formatSeconds, h, openSupervisorSocket, severityBadge, startPage, t, topScore,
} from "./common.js";

const calls = new Map(); // call_id -> {id, metadata, startedMs, risk, flags:Set}
const alerts = new Map(); // alert id -> alert (with acted_by once someone acted)
let selected = null; // the call whose transcript is shown
let transcript = []; // finals of the selected call, in audio order
const partials = new Map(); // track -> partial text of the selected call
let soundOn = localStorage.getItem("stream_server.sound") !== "off";
let audioContext = null;
let unseen = 0;

// -- sound and visual cue ---------------------------------------------------------

function beep(severity) {
  if (!soundOn) return;
  audioContext = audioContext || new AudioContext();
  audioContext.resume();
  const tone = audioContext.createOscillator();
  const gain = audioContext.createGain();
  tone.frequency.value = severity === "critical" || severity === "high" ? 880 : 660;
  gain.gain.setValueAtTime(0.2, audioContext.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audioContext.currentTime + 0.6);
  tone.connect(gain).connect(audioContext.destination);
  tone.start();
  tone.stop(audioContext.currentTime + 0.6);
  document.body.dataset.cues = String(Number(document.body.dataset.cues || 0) + 1);
}

function renderSoundButton() {
  const button = document.getElementById("sound");
  button.textContent = soundOn ? t("board.sound_on") : t("board.sound_off");
  button.classList.toggle("off", !soundOn);
}

function cueTitle() {
  document.title = unseen ? `(${unseen}) ${t("app.title")}` : t("app.title");
}

// -- calls --------------------------------------------------------------------------

function addCall(summary) {
  const id = summary.call_id;
  const known = calls.get(id);
  const startedMs = summary.started_at ? Date.parse(summary.started_at)
    : Date.now() - 1000 * (summary.audio_time || 0);
  calls.set(id, { id, metadata: summary.metadata || {}, startedMs, risk: known?.risk || 0, flags: known?.flags || new Set() });
}

function raiseRisk(callId, score) {
  const call = calls.get(callId);
  if (call && score > call.risk) call.risk = score;
}

function riskClass(risk) {
  return risk >= 0.8 ? "high" : risk >= 0.5 ? "medium" : "low";
}

function renderCalls() {
  const body = clear(document.querySelector("#live-calls tbody"));
  const prolongedS = (config.prolonged_call_minutes || 0) * 60;
  const rows = [...calls.values()].sort((a, b) => b.risk - a.risk || a.startedMs - b.startedMs);
  for (const call of rows) {
    const seconds = (Date.now() - call.startedMs) / 1000;
    if (prolongedS && seconds >= prolongedS) call.flags.add("prolonged");
    const flags = [...call.flags].map((f) => h("span", { class: `flag flag-${f}` }, t(`flag.${f === "repeat_caller" ? "repeat" : f}`)));
    const risk = h("span", { class: `risk risk-${riskClass(call.risk)}`, title: call.risk.toFixed(2) },
      h("span", { class: "risk-bar" }), `${Math.round(100 * call.risk)}`);
    risk.firstChild.style.width = `${Math.round(100 * call.risk)}%`;
    body.append(h("tr", {
      dataset: { callId: call.id }, class: [call.id === selected ? "selected" : "", call.alerting ? "alerting" : ""].join(" "),
      on: { click: () => selectCall(call.id) },
    },
    h("td", { class: "caller" }, callerNumber(call.metadata) || "—"),
    h("td", { class: "duration" }, formatSeconds(seconds)),
    h("td", { class: "source" }, adSource(call.metadata), h("small", {}, campaign(call.metadata))),
    h("td", {}, risk),
    h("td", { class: "flags" }, flags)));
  }
  document.getElementById("no-calls").hidden = calls.size > 0;
}

// -- alerts -------------------------------------------------------------------------

function addAlert(alert, { fresh = false } = {}) {
  alerts.set(alert.id, { ...alerts.get(alert.id), ...alert });
  raiseRisk(alert.call_id, alert.score);
  const call = calls.get(alert.call_id);
  if (call && alert.category === "prolonged") call.flags.add("prolonged");
  if (call && alert.category === "repeat_caller") call.flags.add("repeat_caller");
  if (fresh) {
    unseen += 1;
    if (call) call.alerting = true;
    beep(alert.severity);
  }
  renderAlerts(fresh ? alert.id : null);
  renderCalls();
  cueTitle();
}

function renderAlerts(freshId = null) {
  const list = clear(document.getElementById("alerts"));
  const ordered = [...alerts.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  for (const alert of ordered) {
    const metadata = alert.metadata || {};
    const done = alert.status && alert.status !== "open";
    list.append(h("li", {
      class: `alert sev-${alert.severity}${done ? " done" : ""}${alert.id === freshId ? " fresh" : ""}`,
      dataset: { alertId: alert.id, callId: alert.call_id, category: alert.category },
    },
    h("div", { class: "alert-head" },
      severityBadge(alert.severity),
      h("strong", { class: "category" }, categoryLabel(alert.category)),
      h("span", { class: "when" }, formatClock(alert.created_at)),
      h("a", { href: `/calls/${encodeURIComponent(alert.call_id)}`, class: "at" }, `@${formatSeconds(alert.start)}`)),
    h("q", { class: "alert-text" }, alert.text),
    h("div", { class: "alert-call", on: { click: () => selectCall(alert.call_id) } },
      callerNumber(metadata) || "—", " · ", adSource(metadata), campaign(metadata) ? ` / ${campaign(metadata)}` : ""),
    h("div", { class: "alert-foot" },
      h("span", { class: `status status-${alert.status || "open"}` }, alertStatusText(alert)),
      done ? null : alertActions(alert, (updated) => onAction({ ...updated, by: updated.acknowledged_by })))));
  }
  document.getElementById("no-alerts").hidden = alerts.size > 0;
}

function onAction(event) {
  const id = event.alert_id || event.id;
  const alert = alerts.get(id);
  if (!alert) return;
  alert.status = event.status;
  if (event.by) alert.acted_by = event.by;
  const call = calls.get(alert.call_id);
  if (call) call.alerting = [...alerts.values()].some((a) => a.call_id === call.id && (a.status || "open") === "open");
  unseen = [...alerts.values()].filter((a) => (a.status || "open") === "open").length;
  renderAlerts();
  renderCalls();
  cueTitle();
}

// -- live transcript ----------------------------------------------------------------

async function selectCall(callId) {
  selected = callId;
  transcript = [];
  partials.clear();
  const link = document.getElementById("open-call");
  link.href = `/calls/${encodeURIComponent(callId)}`;
  link.hidden = false;
  renderCalls();
  renderTranscript();
  try {
    const detail = await apiJson(`/v1/calls/${encodeURIComponent(callId)}`);
    if (selected !== callId) return;
    for (const segment of detail.segments) addFinal(segment, false);
    renderTranscript();
  } catch (_) { /* the feed keeps adding lines */ }
}

function addFinal(segment, render = true) {
  if (transcript.some((s) => s.track === segment.track && Math.abs(s.start - segment.start) < 0.01)) return;
  transcript.push(segment);
  transcript.sort((a, b) => a.start - b.start);
  partials.delete(segment.track);
  if (render) renderTranscript();
}

function renderTranscript() {
  const list = clear(document.getElementById("live-transcript"));
  const call = calls.get(selected);
  document.getElementById("transcript-caller").textContent = call ? callerNumber(call.metadata) : "";
  document.getElementById("pick-call").hidden = selected !== null;
  for (const segment of transcript) {
    const [category, score] = topScore(segment.scores);
    list.append(h("li", { class: `line track-${segment.track}${segment.abusive ? " abusive" : ""}` },
      h("span", { class: "at" }, formatSeconds(segment.start)),
      h("span", { class: "speaker" }, t(`track.${segment.track}`)),
      h("span", { class: "text" }, segment.text),
      segment.abusive ? h("span", { class: "tag" }, `${categoryLabel(category)} ${score.toFixed(2)}`) : null));
  }
  for (const [track, text] of partials) {
    list.append(h("li", { class: `line partial track-${track}` },
      h("span", { class: "at" }, "…"), h("span", { class: "speaker" }, t(`track.${track}`)), h("span", { class: "text" }, text)));
  }
  list.scrollTop = list.scrollHeight;
}

// -- the feed -----------------------------------------------------------------------

function handle(event) {
  switch (event.type) {
    case "hello":
      for (const [kind, state] of Object.entries(event.storage || {})) showStorage({ kind, ...state });
      calls.clear();
      for (const summary of event.active_calls) addCall(summary);
      for (const summary of event.active_calls) fillIn(summary.call_id);
      renderCalls();
      break;
    case "call.started":
      addCall(event);
      renderCalls();
      break;
    case "call.ended":
      calls.delete(event.call_id);
      renderCalls();
      break;
    case "transcript.partial":
      if (event.call_id === selected) { partials.set(event.track, event.text); renderTranscript(); }
      break;
    case "transcript.final":
      if (event.track === "caller") raiseRisk(event.call_id, topScore(event.scores)[1]);
      if (event.call_id === selected) addFinal(event);
      renderCalls();
      break;
    case "alert":
      addAlert(event, { fresh: true });
      break;
    case "alert.action":
      onAction(event);
      break;
    case "webhook.failed":
      showBanner(`${t("board.webhook_failed")}: ${event.target || ""} — ${event.error || ""}`);
      break;
    case "storage":
      showStorage(event);
      break;
  }
}

// Storage that refuses writes (disk full, database down): alerts still come, but the evidence
// is only in memory until it returns. One line per kind, gone when every kind is ok again.
const storageFailing = new Map();

function showStorage(event) {
  if (event.state === "failing") storageFailing.set(event.kind, event.error || "");
  else storageFailing.delete(event.kind);
  const banner = document.getElementById("storage-banner");
  banner.textContent = [...storageFailing].map(([kind, error]) => `${t(`storage.${kind}`)}: ${error}`).join(" / ");
  banner.hidden = storageFailing.size === 0;
  document.body.dataset.storage = storageFailing.size ? "failing" : "ok";
}

async function fillIn(callId) {
  try {
    const detail = await apiJson(`/v1/calls/${encodeURIComponent(callId)}`);
    raiseRisk(callId, detail.max_score || 0);
    for (const alert of detail.alerts) {
      const call = calls.get(callId);
      if (call && alert.category === "repeat_caller") call.flags.add("repeat_caller");
      if (call && alert.category === "prolonged") call.flags.add("prolonged");
    }
    renderCalls();
  } catch (_) { /* shown from the feed alone */ }
}

function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text;
  banner.hidden = false;
}

function connect(delay = 500) {
  const status = document.getElementById("feed-status");
  const socket = openSupervisorSocket();
  socket.addEventListener("open", () => {
    delay = 500;
    status.textContent = t("board.connected");
    status.className = "feed-status live";
    document.body.dataset.feed = "live";
  });
  socket.addEventListener("message", (message) => handle(JSON.parse(message.data)));
  socket.addEventListener("close", () => {
    status.textContent = t("board.disconnected");
    status.className = "feed-status down";
    document.body.dataset.feed = "down";
    setTimeout(() => connect(Math.min(delay * 2, 10_000)), delay);
  });
}

async function loadOpenAlerts() {
  for (const alert of (await apiJson("/v1/alerts?status=open&limit=100")).reverse()) addAlert(alert);
  try {
    const webhooks = await apiJson("/v1/webhooks");
    const failed = (webhooks.deliveries || []).find((d) => d.status === "failed");
    if (failed) showBanner(`${t("board.webhook_failed")}: ${failed.target} — ${failed.last_error || ""}`);
  } catch (_) { /* no webhooks configured on this role */ }
}

function rerender() {
  renderSoundButton();
  renderCalls();
  renderAlerts();
  renderTranscript();
  cueTitle();
}

async function main() {
  await startPage("board", { rerender });
  document.getElementById("sound").addEventListener("click", () => {
    soundOn = !soundOn;
    localStorage.setItem("stream_server.sound", soundOn ? "on" : "off");
    if (soundOn) (audioContext = audioContext || new AudioContext()).resume(); // a click may start audio
    renderSoundButton();
  });
  window.addEventListener("focus", () => { unseen = 0; cueTitle(); });
  rerender();
  await loadOpenAlerts();
  connect();
  setInterval(renderCalls, 1000); // durations tick
}

main();
