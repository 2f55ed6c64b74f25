// What every console page shares: sign-in, the API client, text-only DOM building, the
// language switch and time formatting in the server's time zone.
//
// Caller-controlled strings (transcripts, metadata) only ever reach the page as text nodes
// (h() and textContent): nothing here builds HTML from data.

import { STRINGS } from "./i18n.js";

const TOKEN_KEY = "stream_server.token";
const NAME_KEY = "stream_server.name";
const LANG_KEY = "stream_server.lang";

export let config = { language: "ja", timezone: "UTC", auth_required: false, categories: [], severities: [] };

export function lang() {
  return localStorage.getItem(LANG_KEY) || config.language || "ja";
}

export function t(key) {
  return (STRINGS[lang()] || STRINGS.en)[key] ?? STRINGS.en[key] ?? key;
}

export const categoryLabel = (c) => t(`cat.${c}`);
export const severityLabel = (s) => t(`sev.${s}`);
export const statusLabel = (s) => t(`status.${s}`);

/** h("td", {class: "x", title: "..."}, "text", otherNode) — children become text nodes. */
export function h(tag, props = {}, ...children) {
  const isSvg = ["svg", "path", "rect", "line", "g", "text", "title", "polyline"].includes(tag);
  const el = isSvg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on")) {
      throw new Error("event handlers go in props.on");
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// -- session -------------------------------------------------------------------

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

/** Who the server says we are (GET /v1/me): a user's own token names its user. */
export let me = null;

export function supervisorName() {
  if (me && me.kind === "user") return me.name;
  return localStorage.getItem(NAME_KEY) || "";
}

async function whoAmI() {
  const response = await fetch("/v1/me", { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
  me = response.ok ? await response.json() : null;
  return response.status;
}

/** A self-declared name is needed only with the shared bootstrap token or in dev mode. */
function needsName() {
  return !(me && me.kind === "user") && !localStorage.getItem(NAME_KEY);
}

export class Unauthorized extends Error {}

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    showSignIn(t("signin.failed"));
    throw new Unauthorized(path);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

/** Fetch with the bearer token and save the body under the server's file name. */
export async function download(path, fallbackName) {
  const response = await api(path);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: match ? match[1] : fallbackName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function supervisorSocketUrl(query = "") {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const qs = new URLSearchParams(query).toString(); // no token here: URLs end up in logs
  return `${scheme}://${location.host}/v1/supervisor/ws${qs ? "?" + qs : ""}`;
}

/** Open the supervisor feed; browsers cannot set headers on a WebSocket, so the token is the
 * first message rather than part of the URL. */
export function openSupervisorSocket(query = "") {
  const socket = new WebSocket(supervisorSocketUrl(query));
  socket.addEventListener("open", () => {
    if (token()) socket.send(JSON.stringify({ type: "auth", token: token() }));
  });
  return socket;
}

let signInResolve = null;

function showSignIn(message = "") {
  const dialog = document.getElementById("signin");
  document.getElementById("signin-error").textContent = message;
  document.getElementById("signin-name").value = supervisorName();
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => { signInResolve = resolve; });
}

function renderSignIn() {
  const dialog = h("dialog", { id: "signin" },
    h("form", { method: "dialog", id: "signin-form" },
      h("h2", { "data-i18n": "signin.title" }),
      h("label", {}, h("span", { "data-i18n": "signin.token" }), h("input", { id: "signin-token", type: "password", autocomplete: "off" })),
      h("label", {}, h("span", { "data-i18n": "signin.name" }), h("input", { id: "signin-name", maxlength: 128 })),
      h("p", { id: "signin-error", class: "error" }),
      h("button", { type: "submit", id: "signin-submit", "data-i18n": "signin.submit" })));
  document.body.append(dialog);
  dialog.addEventListener("cancel", (event) => event.preventDefault()); // no way around it
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const presented = document.getElementById("signin-token").value.trim();
    localStorage.setItem(NAME_KEY, document.getElementById("signin-name").value.trim());
    if (presented || !config.auth_required) localStorage.setItem(TOKEN_KEY, presented);
    if ((await whoAmI()) === 401) {
      document.getElementById("signin-error").textContent = t("signin.failed");
      return;
    }
    if (needsName()) {
      document.getElementById("signin-error").textContent = t("signin.need_name");
      return;
    }
    dialog.close();
    if (signInResolve) signInResolve();
  });
}

// -- page chrome -----------------------------------------------------------------

export function applyI18n(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

function renderHeader(active) {
  const nav = [["/", "nav.board", "board"], ["/calls", "nav.calls", "calls"], ["/reports", "nav.reports", "reports"]];
  const header = h("header", { class: "top" },
    h("strong", { class: "brand", "data-i18n": "app.title" }),
    h("nav", {}, nav.map(([href, key, id]) => h("a", { href, "data-i18n": key, class: id === active ? "active" : null }))),
    h("span", { class: "spacer" }),
    h("span", { id: "who", class: "who" }),
    h("span", { class: "tz" }, config.timezone),
    h("button", { id: "lang-switch", type: "button", "data-i18n": "lang.switch", on: { click: switchLanguage } }),
    h("button", { id: "signout", type: "button", "data-i18n": "signout", on: { click: signOut } }));
  document.body.prepend(header);
  if (config.mode === "dev" && (config.open_doors || []).length) {
    header.after(h("div", { id: "dev-mode", class: "dev-mode", role: "alert" },
      h("strong", { "data-i18n": "dev.banner" }), " ", config.open_doors.join(", ")));
  }
}

let onLanguageChange = () => {};

function switchLanguage() {
  localStorage.setItem(LANG_KEY, lang() === "ja" ? "en" : "ja");
  applyI18n();
  onLanguageChange();
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  location.reload();
}

/** Load the server's console settings, draw the header, make sure we are signed in. */
export async function startPage(active, { rerender } = {}) {
  config = await (await fetch("/v1/console/config")).json();
  onLanguageChange = rerender || (() => {});
  renderHeader(active);
  renderSignIn();
  applyI18n();
  const status = await whoAmI();
  if (status === 401 || needsName()) await showSignIn(status === 401 && token() ? t("signin.failed") : "");
  document.getElementById("who").textContent = me && me.kind === "user" ? `${me.name} (${me.role})` : supervisorName();
}

// -- formatting -------------------------------------------------------------------

function locale() {
  return lang() === "ja" ? "ja-JP" : "en-GB";
}

export function formatDateTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: config.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(new Date(iso));
}

export function formatClock(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: config.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(new Date(iso));
}

/** Seconds as m:ss (h:mm:ss past an hour): durations and positions in a recording. */
export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

export function formatPercent(fraction) {
  return `${(100 * (fraction || 0)).toFixed(1)}%`;
}

/** The UTC instant of a wall-clock time in the console's time zone ("2026-12-04", "00:00"). */
export function zonedToIso(date, time = "00:00") {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let guess = wall;
  for (let i = 0; i < 2; i++) guess = wall - zoneOffsetMs(new Date(guess));  // converges across DST edges
  return new Date(guess).toISOString();
}

function zoneOffsetMs(instant) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: config.timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(instant).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/** Today's date (YYYY-MM-DD) in the console's time zone, `days` from now. */
export function zonedDate(days = 0) {
  const instant = new Date(Date.now() + days * 86_400_000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: config.timezone }).format(instant);
}

export function callerNumber(metadata = {}) {
  return metadata.from || metadata.caller || metadata.caller_number || "";
}

export function adSource(metadata = {}) {
  return metadata.utm_source || metadata.ad_source || metadata.source || "";
}

export function campaign(metadata = {}) {
  return metadata.utm_campaign || metadata.campaign || "";
}

export function topScore(scores = {}) {
  let best = ["", 0];
  for (const [category, score] of Object.entries(scores)) if (score > best[1]) best = [category, score];
  return best;
}

/** The alert action buttons (acknowledge / escalate with a note / false alarm). */
export function alertActions(alert, onDone) {
  const act = async (action, note = "") => {
    const updated = await apiJson(`/v1/alerts/${encodeURIComponent(alert.id)}/actions`, {
      method: "POST", json: { action, by: supervisorName(), note },
    });
    onDone(updated);
  };
  const escalate = () => {
    const dialog = h("dialog", { class: "escalate" });
    const note = h("textarea", { rows: 3, maxlength: 4000, class: "escalate-note" });
    dialog.append(h("form", { method: "dialog" },
      h("label", {}, t("action.note"), note),
      h("div", { class: "buttons" },
        h("button", { type: "button", on: { click: () => dialog.close() } }, t("action.cancel")),
        h("button", { type: "submit", class: "escalate-send" }, t("action.submit")))));
    dialog.querySelector("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      await act("escalate", note.value);
      dialog.close();
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  };
  return h("span", { class: "actions" },
    h("button", { type: "button", class: "ack", on: { click: () => act("acknowledge") } }, t("action.acknowledge")),
    h("button", { type: "button", class: "escalate", on: { click: escalate } }, t("action.escalate")),
    h("button", { type: "button", class: "false-alarm", on: { click: () => act("false_alarm") } }, t("action.false_alarm")));
}

export function alertStatusText(alert) {
  if (!alert.status || alert.status === "open") return statusLabel("open");
  const who = alert.acted_by || alert.acknowledged_by;
  return `${statusLabel(alert.status)}${who ? ` · ${t("by")} ${who}` : ""}`;
}

export function severityBadge(severity) {
  return h("span", { class: `badge sev-${severity}` }, severityLabel(severity));
}
