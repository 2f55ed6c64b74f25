// Call search: the form's state lives in the page URL (shareable, the back button works) and
// is turned into GET /v1/calls parameters; results are paginated with X-Total-Count.

import {
  api, categoryLabel, clear, config, formatDateTime, formatSeconds, h, startPage, statusLabel, t, zonedToIso,
} from "./common.js";

const PAGE_SIZE = 25;
const form = document.getElementById("search");
const FIELDS = ["since", "until", "phone", "ad_source", "campaign", "agent", "category", "min_score",
  "min_duration", "max_duration", "acknowledged"];

function state() {
  return new URLSearchParams(location.search);
}

function fillForm() {
  const params = state();
  for (const name of FIELDS) form.elements[name].value = params.get(name) || "";
}

function renderCategories() {
  const select = clear(form.elements.category);
  select.append(h("option", { value: "" }, t("search.any")));
  for (const category of config.categories) select.append(h("option", { value: category }, categoryLabel(category)));
  select.value = state().get("category") || "";
}

/** Page URL state -> API query: dates are days in the console's time zone, durations minutes. */
function apiQuery(params) {
  const query = new URLSearchParams();
  const day = (value, offsetDays = 0) => {
    const d = new Date(`${value}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + offsetDays);
    return zonedToIso(d.toISOString().slice(0, 10));
  };
  if (params.get("since")) query.set("since", day(params.get("since")));
  if (params.get("until")) query.set("until", day(params.get("until"), 1)); // the whole last day
  for (const name of ["phone", "ad_source", "campaign", "agent", "category", "min_score", "acknowledged"]) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  if (params.get("min_duration")) query.set("min_duration", String(60 * Number(params.get("min_duration"))));
  if (params.get("max_duration")) query.set("max_duration", String(60 * Number(params.get("max_duration"))));
  query.set("sort", params.get("sort") || "started_at");
  query.set("order", params.get("order") || "desc");
  query.set("limit", String(PAGE_SIZE));
  query.set("offset", params.get("offset") || "0");
  return query;
}

async function search() {
  const params = state();
  const response = await api(`/v1/calls?${apiQuery(params)}`);
  const rows = await response.json();
  const total = Number(response.headers.get("X-Total-Count") || rows.length);
  const offset = Number(params.get("offset") || 0);
  const body = clear(document.querySelector("#results tbody"));
  for (const call of rows) {
    const href = `/calls/${encodeURIComponent(call.id)}`;
    body.append(h("tr", { dataset: { callId: call.id }, class: call.alert_count ? "has-alerts" : null, on: { click: () => { location.href = href; } } },
      h("td", {}, h("a", { href }, formatDateTime(call.started_at))),
      h("td", {}, call.caller_number || "—"),
      h("td", {}, formatSeconds(call.duration)),
      h("td", { class: "ad-source" }, call.ad_source || ""),
      h("td", { class: "campaign" }, call.campaign || ""),
      h("td", {}, call.agent || ""),
      h("td", {}, (call.max_score || 0).toFixed(2)),
      h("td", {}, String(call.alert_count)),
      h("td", {}, statusLabel(call.status))));
  }
  document.getElementById("total").textContent = String(total);
  document.getElementById("no-results").hidden = rows.length > 0;
  document.getElementById("page").textContent = total ? `${offset + 1}–${offset + rows.length} / ${total}` : "";
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = offset + rows.length >= total;
  for (const th of document.querySelectorAll("#results th[data-sort]")) {
    const active = th.dataset.sort === (params.get("sort") || "started_at");
    th.className = active ? `sorted ${params.get("order") || "desc"}` : "";
  }
  document.body.dataset.results = String(rows.length);
}

function go(changes) {
  const params = state();
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) params.delete(key); else params.set(key, value);
  }
  history.pushState(null, "", `/calls?${params}`);
  search();
}

async function main() {
  await startPage("calls", { rerender: () => { renderCategories(); search(); } });
  renderCategories();
  fillForm();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = { offset: "" };
    for (const name of FIELDS) changes[name] = form.elements[name].value.trim();
    go(changes);
  });
  for (const th of document.querySelectorAll("#results th[data-sort]")) {
    th.addEventListener("click", () => {
      const params = state();
      const same = (params.get("sort") || "started_at") === th.dataset.sort;
      const order = same && (params.get("order") || "desc") === "desc" ? "asc" : "desc";
      go({ sort: th.dataset.sort, order, offset: "" });
    });
  }
  document.getElementById("prev").addEventListener("click", () =>
    go({ offset: String(Math.max(0, Number(state().get("offset") || 0) - PAGE_SIZE)) }));
  document.getElementById("next").addEventListener("click", () =>
    go({ offset: String(Number(state().get("offset") || 0) + PAGE_SIZE) }));
  window.addEventListener("popstate", () => { fillForm(); search(); });
  await search();
}

main();
