// QA replay of one call: the recording with its transcript kept in step (the sentence being
// played is highlighted; a click on a sentence seeks there), and a timeline of loudness with
// the flagged sentences and alerts marked, so a reviewer jumps straight to them.

import {
  adSource, alertActions, alertStatusText, api, apiJson, callerNumber, campaign, categoryLabel, clear,
  formatDateTime, formatSeconds, h, severityBadge, startPage, statusLabel, supervisorName, t, topScore, download,
} from "./common.js";

const callId = decodeURIComponent(location.pathname.split("/").pop());
const player = document.getElementById("player");
let call = null;
let loudness = null;
let track = null; // null = both tracks
let length = 1; // seconds the timeline spans

function seek(seconds) {
  player.currentTime = Math.max(0, seconds);
  player.play().catch(() => { /* autoplay refused: the position is still set */ });
}

// -- facts ------------------------------------------------------------------------

function renderFacts() {
  const m = call.metadata || {};
  const facts = [
    ["col.caller", callerNumber(m) || "—"], ["col.started", formatDateTime(call.started_at)],
    ["col.duration", formatSeconds(call.duration)], ["col.status", statusLabel(call.status)],
    ["col.ad_source", adSource(m)], ["col.campaign", campaign(m)], ["col.tracking", call.tracking_number || ""],
    ["col.agent", call.agent || ""], ["call.carrier", call.carrier], ["col.score", (call.max_score || 0).toFixed(2)],
  ];
  const list = clear(document.getElementById("facts"));
  for (const [key, value] of facts) list.append(h("div", {}, h("dt", {}, t(key)), h("dd", {}, value)));
}

// -- recording ----------------------------------------------------------------------

async function loadRecording() {
  const query = track ? `?track=${track}` : "";
  const response = await api(`/v1/calls/${encodeURIComponent(callId)}/recording.wav${query}`);
  const at = player.currentTime || 0;
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(await response.blob());
  player.currentTime = at;
  renderTrackChoice();
}

function renderTrackChoice() {
  const choice = clear(document.getElementById("track-choice"));
  for (const option of [null, ...call.tracks]) {
    choice.append(h("button", {
      type: "button", class: option === track ? "active" : null, dataset: { track: option || "both" },
      on: { click: () => { track = option; loadRecording(); } },
    }, option ? t(`track.${option}`) : t("call.both_tracks")));
  }
}

// -- timeline -----------------------------------------------------------------------

const WIDTH = 1000;
const HEIGHT = 120;
const x = (seconds) => (WIDTH * seconds) / length;
const y = (dbfs) => 100 - (90 * (Math.max(-90, dbfs) + 90)) / 90;

function renderTimeline() {
  const svg = clear(document.getElementById("timeline"));
  svg.append(h("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "bg" }));
  for (const segment of call.segments.filter((s) => s.abusive && s.track === "caller")) {
    svg.append(h("rect", {
      x: x(segment.start), y: 104, width: Math.max(2, x(segment.end) - x(segment.start)), height: 14, class: "flagged",
      dataset: { start: segment.start }, on: { click: () => seek(segment.start) },
    }, h("title", {}, segment.text)));
  }
  if (loudness) {
    for (const [name, values] of Object.entries(loudness.tracks)) {
      const points = values.map((v, i) => `${x(i * loudness.step).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      svg.append(h("polyline", { points, class: `loudness track-${name}` }, h("title", {}, `${t("call.loudness")} ${t(`track.${name}`)}`)));
    }
  }
  for (const alert of call.alerts) {
    svg.append(h("rect", {
      x: x(alert.start) - 2, y: 0, width: 5, height: 104, class: `alert-mark sev-${alert.severity}`,
      on: { click: () => seek(alert.start) },
    }, h("title", {}, `${categoryLabel(alert.category)}: ${alert.text}`)));
  }
  svg.append(h("line", { id: "playhead", x1: 0, x2: 0, y1: 0, y2: HEIGHT, class: "playhead" }));
}

function seekOnTimeline(event) {
  if (event.target.closest(".flagged, .alert-mark")) return; // those seek to their own start
  const box = event.currentTarget.getBoundingClientRect();
  seek(((event.clientX - box.left) / box.width) * length);
}

// -- transcript ---------------------------------------------------------------------

function scoreChips(scores) {
  return Object.entries(scores).sort((a, b) => b[1] - a[1])
    .map(([category, score]) => h("span", { class: `score${score >= 0.5 ? " hot" : ""}` }, `${categoryLabel(category)} ${score.toFixed(2)}`));
}

function renderTranscript() {
  const list = clear(document.getElementById("transcript"));
  for (const segment of call.segments) {
    const [category, score] = topScore(segment.scores);
    list.append(h("li", {
      class: `line track-${segment.track}${segment.abusive ? " abusive" : ""}`,
      dataset: { start: segment.start, end: segment.end, segmentId: segment.id },
      on: { click: () => seek(segment.start) },
    },
    h("span", { class: "at" }, formatSeconds(segment.start)),
    h("span", { class: "speaker" }, t(`track.${segment.track}`)),
    h("span", { class: "text" }, segment.text),
    segment.abusive ? h("span", { class: "tag" }, `${categoryLabel(category)} ${score.toFixed(2)}`) : null,
    h("span", { class: "scores" }, scoreChips(segment.scores))));
  }
}

function followPlayback() {
  const now = player.currentTime;
  document.getElementById("playhead")?.setAttribute("x1", x(now));
  document.getElementById("playhead")?.setAttribute("x2", x(now));
  let current = null;
  for (const li of document.querySelectorAll("#transcript li")) {
    if (Number(li.dataset.start) <= now + 0.05 && now < Number(li.dataset.end) + 0.3) current = li;
  }
  for (const li of document.querySelectorAll("#transcript li.current")) if (li !== current) li.classList.remove("current");
  if (current && !current.classList.contains("current")) {
    current.classList.add("current");
    current.scrollIntoView({ block: "nearest" });
  }
}

// -- alerts and actions ---------------------------------------------------------------

function renderAlerts() {
  const list = clear(document.getElementById("call-alerts"));
  for (const alert of call.alerts) {
    const open = (alert.status || "open") === "open";
    list.append(h("li", { class: `alert sev-${alert.severity}${open ? "" : " done"}`, dataset: { alertId: alert.id } },
      h("div", { class: "alert-head" },
        severityBadge(alert.severity),
        h("strong", {}, categoryLabel(alert.category)),
        h("a", { href: "#", class: "at", on: { click: (e) => { e.preventDefault(); seek(alert.start); } } }, `@${formatSeconds(alert.start)}`)),
      h("q", { class: "alert-text" }, alert.text),
      h("div", { class: "alert-foot" },
        h("span", { class: `status status-${alert.status || "open"}` }, alertStatusText(alert)),
        open ? alertActions(alert, reload) : null)));
  }
  const actions = clear(document.getElementById("call-actions"));
  for (const action of call.actions || []) {
    const alert = call.alerts.find((a) => a.id === action.alert_id);
    actions.append(h("li", {},
      h("span", { class: "when" }, formatDateTime(action.at)), " ",
      h("strong", {}, action.by), " · ", t(`action.${action.action}`),
      alert ? ` · ${categoryLabel(alert.category)}` : "",
      action.note ? h("q", { class: "note" }, action.note) : null));
  }
}

async function reload() {
  call = await apiJson(`/v1/calls/${encodeURIComponent(callId)}`);
  renderAll();
}

function renderAll() {
  length = Math.max(1, call.duration || 0, ...call.segments.map((s) => s.end), player.duration || 0);
  renderFacts();
  renderTrackChoice();
  renderTimeline();
  renderTranscript();
  renderAlerts();
  followPlayback();
}

async function main() {
  await startPage("calls", { rerender: () => call && renderAll() });
  try {
    call = await apiJson(`/v1/calls/${encodeURIComponent(callId)}`);
  } catch (error) {
    const box = document.getElementById("error");
    box.textContent = `${t("call.not_found")} (${error.message})`;
    box.hidden = false;
    return;
  }
  document.title = `${callerNumber(call.metadata) || callId} — ${t("call.title")}`;
  document.getElementById("show-scores").addEventListener("change", (e) => document.body.classList.toggle("show-scores", e.target.checked));
  const name = encodeURIComponent(supervisorName());
  document.getElementById("export-evidence").addEventListener("click", () =>
    download(`/v1/calls/${encodeURIComponent(callId)}/evidence.zip?by=${name}`, `call-${callId}-evidence.zip`));
  document.getElementById("export-training").addEventListener("click", () =>
    download(`/v1/calls/${encodeURIComponent(callId)}/training.zip?by=${name}`, `call-${callId}-training.zip`));
  document.getElementById("timeline").addEventListener("click", seekOnTimeline);
  player.addEventListener("timeupdate", followPlayback);
  player.addEventListener("seeked", followPlayback);
  player.addEventListener("loadedmetadata", () => renderAll());
  renderAll();
  try {
    loudness = await apiJson(`/v1/calls/${encodeURIComponent(callId)}/loudness?step=0.25`);
  } catch (_) { loudness = null; }
  renderTimeline();
  if (call.tracks.length || call.duration) {
    await loadRecording().catch(() => { /* no recording stored: transcript only */ });
  }
  document.body.dataset.ready = "true";
}

main();
