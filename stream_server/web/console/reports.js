// Reports over a period (days in the console's time zone): which ad sources and campaigns bring
// abusive callers, repeat callers, call durations, and how much abuse each agent absorbed.
// Charts are plain SVG bars; each table downloads as CSV from the same API.

import {
  apiJson, clear, download, formatDateTime, formatPercent, formatSeconds, h, startPage, t, zonedDate, zonedToIso,
} from "./common.js";

const form = document.getElementById("period");
let period = null; // {since, until}: days (YYYY-MM-DD) in the console's time zone
let data = {};

function query() {
  const until = new Date(`${period.until}T00:00:00Z`);
  until.setUTCDate(until.getUTCDate() + 1); // the whole last day
  return new URLSearchParams({ since: zonedToIso(period.since), until: zonedToIso(until.toISOString().slice(0, 10)) });
}

/** Horizontal bars: [{label, value, text}] scaled to the largest value (or to 1 for rates). */
function barChart(svg, bars, { max = null } = {}) {
  clear(svg);
  const rowHeight = 22;
  const labelWidth = 260;
  const width = 900;
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(1, bars.length) * rowHeight + 4}`);
  const top = max ?? Math.max(1e-9, ...bars.map((b) => b.value));
  bars.forEach((bar, i) => {
    const y = i * rowHeight + 2;
    const length = ((width - labelWidth - 90) * bar.value) / top;
    svg.append(h("g", { class: "bar", dataset: { label: bar.label } },
      h("text", { x: labelWidth - 8, y: y + 15, class: "label" }, bar.label),
      h("rect", { x: labelWidth, y: y + 3, width: Math.max(1, length), height: rowHeight - 6, class: bar.className || "value" }),
      h("text", { x: labelWidth + length + 6, y: y + 15, class: "figure" }, bar.text)));
  });
}

function fillTable(section, rows, cells) {
  const body = clear(document.querySelector(`#${section} tbody`));
  for (const row of rows) body.append(h("tr", {}, cells(row).map((c) => h("td", {}, c ?? ""))));
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("report.none"))));
}

function render() {
  const ads = data["ad-sources"]?.rows || [];
  barChart(document.getElementById("chart-ad-sources"), ads.map((r) => ({
    label: `${r.ad_source ?? "—"} / ${r.campaign ?? "—"}`, value: r.abuse_rate,
    text: `${formatPercent(r.abuse_rate)} (${r.abusive_calls}/${r.calls})`, className: r.abusive_calls ? "value hot" : "value",
  })), { max: 1 });
  fillTable("report-ad-sources", ads, (r) => [r.ad_source ?? "—", r.campaign ?? "—", r.calls, r.abusive_calls,
    formatPercent(r.abuse_rate), r.alerts]);

  fillTable("report-callers", data.callers?.rows || [], (r) => [r.caller_number, r.calls, r.abusive_calls, r.alerts,
    formatSeconds(r.total_duration), formatDateTime(r.last_call_at)]);

  const durations = data.durations || { buckets: [] };
  barChart(document.getElementById("chart-durations"), durations.buckets.map((b) => ({
    label: b.label, value: b.calls, text: `${b.calls} (${b.abusive_calls})`,
  })));
  fillTable("report-durations", durations.buckets, (b) => [b.label, b.calls, b.abusive_calls]);
  document.getElementById("prolonged-summary").textContent = durations.prolonged_call_minutes
    ? `${t("report.prolonged")} (> ${durations.prolonged_call_minutes} min): ${durations.prolonged_calls}` : "";

  const agents = data.agents?.rows || [];
  barChart(document.getElementById("chart-agents"), agents.map((r) => ({
    label: r.agent ?? "—", value: r.abusive_calls, text: `${r.abusive_calls} / ${r.calls}`, className: "value hot",
  })));
  fillTable("report-agents", agents, (r) => [r.agent ?? "—", r.calls, r.abusive_calls, r.alerts,
    formatSeconds(r.abusive_call_seconds), r.escalations]);
}

async function load() {
  const qs = query();
  const names = ["ad-sources", "callers", "durations", "agents"];
  const results = await Promise.all(names.map((n) => apiJson(`/v1/reports/${n}?${qs}`).catch(() => null)));
  data = Object.fromEntries(names.map((n, i) => [n, results[i]]));
  render();
  document.body.dataset.ready = "true";
}

async function main() {
  await startPage("reports", { rerender: render });
  const params = new URLSearchParams(location.search);
  // Defaults need the server's time zone, known only once startPage has loaded the config.
  period = { since: params.get("since") || zonedDate(-30), until: params.get("until") || zonedDate(0) };
  form.elements.since.value = period.since;
  form.elements.until.value = period.until;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    period = { since: form.elements.since.value || period.since, until: form.elements.until.value || period.until };
    history.replaceState(null, "", `/reports?${new URLSearchParams(period)}`);
    load();
  });
  for (const button of document.querySelectorAll("button.csv")) {
    button.addEventListener("click", () => {
      const qs = query();
      qs.set("format", "csv");
      download(`/v1/reports/${button.dataset.report}?${qs}`, `${button.dataset.report}-report.csv`);
    });
  }
  await load();
}

main();
