// PAR console: one script, no framework, no build step. Every data call goes to PAR's own
// API with the operator's credential in `Authorization: Bearer` (kept in sessionStorage:
// this tab only, gone when it closes). No cookies, so nothing a forged request could use.
"use strict";

const KEY = "par.console.credential";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const SVG = "http://www.w3.org/2000/svg";

const state = {
  credential: sessionStorage.getItem(KEY),
  agents: [],
  metrics: null,
  previous: null,
  history: [],
  liveTimer: null,
  runStream: null,
  invokeAbort: null,
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

// ---- HTTP ------------------------------------------------------------------------------

function headers(extra = {}) {
  const h = Object.assign({}, extra);
  if (state.credential) h.Authorization = "Bearer " + state.credential;
  return h;
}

async function api(path, { method = "GET", body, accept } = {}) {
  const init = { method, headers: headers(accept ? { Accept: accept } : {}), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (accept === "text/event-stream" && response.ok) return response;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/runtime/agents") signOut("Signed out: the server no longer accepts the credential.");
    throw new ApiError(response.status, data);
  }
  return data;
}

// Server-Sent Events over fetch (EventSource cannot send an Authorization header): calls
// `onEvent({event, data, id})` for each event as its bytes arrive.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = { event: "message", data: "", id: null };
      const lines = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") lines.push(text);
        else if (field === "event") event.event = text;
        else if (field === "id") event.id = text;
      }
      if (!lines.length && event.event === "message") continue;
      event.data = lines.join("\n");
      onEvent(event);
    }
  }
}

function parseJson(text) {
  try { return JSON.parse(text); } catch { return text; }
}

// ---- small DOM helpers -----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || text), text });
}

function flash(message, kind = "ok") {
  const box = $("#flash");
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function fmtReported(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(3) : v}`).join(", ") || "–";
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 12, class: "empty", text: empty }))]));
}

// Two clicks for anything destructive: the first arms the button for a few seconds.
function confirmed(button) {
  if (button.dataset.armed) return true;
  const label = button.textContent;
  button.dataset.armed = "1";
  button.textContent = "Confirm " + label.toLowerCase();
  button.classList.add("armed");
  setTimeout(() => { delete button.dataset.armed; button.textContent = label; button.classList.remove("armed"); }, 4000);
  return false;
}

// ---- sign in ---------------------------------------------------------------------------

async function signIn(credential) {
  state.credential = credential || null;
  try {
    const data = await api("/runtime/agents");
    if (credential) sessionStorage.setItem(KEY, credential);
    state.agents = data.agents;
    $("#who").textContent = credential ? "signed in" : "auth off (loopback)";
    $("#nav").hidden = false;
    $("#logout").hidden = !credential;
    return true;
  } catch (e) {
    state.credential = null;
    sessionStorage.removeItem(KEY);
    if (!credential) return false;
    $("#login-error").textContent = e.status === 401 ? "The server does not accept this credential."
      : e.status === 403 ? "This credential is valid but has no admin role."
      : "Cannot sign in: " + e.message;
    return false;
  }
}

function signOut(message) {
  state.credential = null;
  sessionStorage.removeItem(KEY);
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#who").textContent = "";
  $("#login-error").textContent = message || "";
  show("login");
}

// ---- views -----------------------------------------------------------------------------

const views = { agents: loadAgents, packages: loadPackages, live: startLive, usage: loadUsage, runs: loadRuns, invoke: openInvoke };

function show(name, arg) {
  for (const v of $$(".view")) v.hidden = v.id !== "view-" + name;
  for (const a of $$("#nav a")) a.classList.toggle("active", a.dataset.view === name);
  if (name !== "live") clearInterval(state.liveTimer);
  flash("");
  const load = views[name];
  if (load) load(arg).catch((e) => flash(e.message, "error"));
}

function route() {
  if ($("#nav").hidden) return show("login");
  const [name, arg] = decodeURIComponent(location.hash.slice(1)).split("/");
  show(views[name] ? name : "agents", arg);
}

async function fetchMetrics() {
  const text = await (await fetch("/metrics", { headers: headers(), cache: "no-store" })).text();
  state.metrics = summarize(parseMetrics(text));
  return state.metrics;
}

async function loadAgents() {
  const [data] = await Promise.all([api("/runtime/agents"), fetchMetrics().catch(() => null)]);
  state.agents = data.agents;
  const per = (state.metrics && state.metrics.agents) || {};
  const rows = state.agents.map((a) => {
    const m = per[a.id] || {};
    const toggle = el("button", { type: "button", class: "quiet", text: a.enabled ? "Disable" : "Enable",
      onclick: () => setEnabled(a.id, !a.enabled) });
    return el("tr", { dataset: { agent: a.id } },
      el("td", {}, el("a", { href: "#invoke/" + a.id, text: a.id })),
      el("td", { text: a.package }),
      el("td", { text: (a.versions || [a.version]).join(", ") }),
      el("td", {}, a.enabled ? badge("enabled", "ready") : badge("disabled", "failed"),
        a.input_schema ? badge("schema", "info") : null,
        (a.capabilities || []).includes("streaming") ? badge("streaming", "info") : null),
      el("td", { class: "num", text: m.calls ?? 0 }),
      el("td", { class: "num", text: m.errors ?? 0 }),
      el("td", { class: "num", text: fmtMs(m.p95) }),
      el("td", { class: "desc", text: a.description }),
      el("td", { class: "actions" }, el("a", { href: "#invoke/" + a.id, class: "button", text: "Invoke" }), toggle));
  });
  fill($("#agents-table tbody"), rows, "No agents mounted.");
}

async function setEnabled(id, enabled) {
  try {
    await api(`/runtime/agents/${encodeURIComponent(id)}/${enabled ? "enable" : "disable"}`, { method: "POST", body: {} });
    await loadAgents();
    flash(`${id} ${enabled ? "enabled" : "disabled"}.`);
  } catch (e) { flash(e.message, "error"); }
}

function sandboxCell(s) {
  if (!s) return el("td", { text: "–" });
  const limits = Object.entries(s.limits || {}).filter(([, l]) => l.max !== null && l.max !== undefined)
    .map(([k, l]) => `${k.replace(/_/g, " ")} ${l.max}`);
  const egress = (s.egress || []).length ? ` (+${s.egress.length} allowed)` : "";
  return el("td", {}, badge(s.mode, s.mode === "off" ? "failed" : "info"), `network ${s.network}${egress}`,
    el("div", { class: "hint", text: limits.join(" · ") }));
}

async function loadPackages() {
  const data = await api("/runtime/packages");
  const rows = data.packages.map((p) => {
    const unload = p.name && p.state !== "failed"
      ? el("button", { type: "button", class: "danger", text: "Unload", onclick: (ev) => unloadPackage(p, ev.target) })
      : null;
    const state = el("td", {}, badge(p.state), p.crash_loop ? badge("crash loop", "failed") : null);
    if (p.state === "loading" && p.phase) state.append(" ", p.phase);
    if (p.error) state.append(el("div", { class: "error", text: (p.failed_phase ? p.failed_phase + ": " : "") + p.error }));
    return el("tr", { dataset: { package: p.name || "", state: p.state } },
      el("td", { text: p.name || "–" }),
      el("td", { text: p.version || "–" }),
      state,
      el("td", { class: "num", text: (p.workers || []).length ? `${p.workers.length} (pid ${p.workers.join(", ")})` : "0" }),
      el("td", { class: "num", text: `${p.inflight ?? 0} running, ${p.queued ?? 0} queued` }),
      el("td", { class: "num", text: `${p.restarts ?? 0} / ${p.crashes ?? 0} crashes` }),
      sandboxCell(p.sandbox),
      el("td", { class: "desc mono", text: p.source.split("/").pop(), title: `${p.source}\nsha256 ${p.sha256 || "–"}` }),
      el("td", { class: "actions" }, unload));
  });
  fill($("#packages-table tbody"), rows, "No packages.");
}

async function unloadPackage(p, button) {
  if (!confirmed(button)) return;
  try {
    await api(`/runtime/packages/${encodeURIComponent(p.name)}/${encodeURIComponent(p.version)}`, { method: "DELETE" });
    flash(`Unloading ${p.name} ${p.version}…`);
    for (let i = 0; i < 40; i++) {
      await loadPackages();
      if (!$(`#packages-table tr[data-package="${CSS.escape(p.name)}"]`)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    flash(`${p.name} ${p.version} unloaded.`);
  } catch (e) { flash(e.message, "error"); }
}

async function loadPackage(ev) {
  ev.preventDefault();
  const status = $("#load-status");
  try {
    const job = await api("/runtime/packages", { method: "POST", body: { source: $("#load-source").value.trim() } });
    for (;;) {
      const now = await api(`/runtime/loads/${job.load_id}`);
      const phases = now.packages.map((p) => `${p.name || p.source}: ${p.state}${p.phase ? " (" + p.phase + ")" : ""}`);
      status.textContent = `load ${job.load_id}: ${now.state} ${phases.join("; ")}`;
      if (now.state !== "loading") {
        if (now.state === "failed") flash(now.error || now.packages.map((p) => p.error).join("; "), "error");
        break;
      }
      await new Promise((r) => setTimeout(r, 400));
    }
    await loadPackages();
  } catch (e) { flash(e.message, "error"); }
}

async function reloadSources() {
  try {
    await api("/runtime/reload", { method: "POST", body: {} });
    flash("Reloading startup sources and the registry index…");
    setTimeout(() => loadPackages().catch(() => {}), 1000);
  } catch (e) { flash(e.message, "error"); }
}

// ---- live metrics ----------------------------------------------------------------------

// Prometheus/OpenMetrics text → [{name, labels, value}].
function parseMetrics(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw[0] === "#") continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

// The quantile `q` (0..1) of a cumulative histogram [{le, count}], interpolated in its bucket.
function quantile(buckets, q) {
  const sorted = buckets.filter((b) => Number.isFinite(b.le)).sort((a, b) => a.le - b.le);
  const total = buckets.reduce((m, b) => Math.max(m, b.count), 0);
  if (!total) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const b of sorted) {
    if (b.count >= rank) return (lower + (b.le - lower) * ((rank - below) / Math.max(b.count - below, 1e-9))) * 1000;
    lower = b.le; below = b.count;
  }
  return lower * 1000;
}

function summarize(samples) {
  const agents = {};
  const agent = (id) => (agents[id] ||= { calls: 0, errors: 0, codes: {}, inflight: 0, sum: 0, count: 0, buckets: [] });
  const totals = { restarts: 0, loads: {}, http: 0 };
  for (const s of samples) {
    const id = s.labels.agent;
    switch (s.name) {
      case "par_invocations_total": {
        const a = agent(id);
        a.calls += s.value;
        if (s.labels.code !== "ok") { a.errors += s.value; a.codes[s.labels.code] = (a.codes[s.labels.code] || 0) + s.value; }
        break;
      }
      case "par_inflight_invocations": agent(id).inflight += s.value; break;
      case "par_invocation_duration_seconds_sum": agent(id).sum += s.value; break;
      case "par_invocation_duration_seconds_count": agent(id).count += s.value; break;
      case "par_invocation_duration_seconds_bucket":
        agent(id).buckets.push({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value });
        break;
      case "par_worker_restarts_total": totals.restarts += s.value; break;
      case "par_package_loads_total": totals.loads[s.labels.outcome] = (totals.loads[s.labels.outcome] || 0) + s.value; break;
      case "par_http_requests_total": totals.http += s.value; break;
    }
  }
  for (const a of Object.values(agents)) {
    a.mean = a.count ? (a.sum / a.count) * 1000 : null;
    a.p50 = quantile(a.buckets, 0.5);
    a.p95 = quantile(a.buckets, 0.95);
  }
  return { agents, totals, at: Date.now() };
}

function card(label, value, id) {
  return el("div", { class: "stat", id }, el("span", { class: "value", text: value }), el("span", { class: "label", text: label }));
}

async function startLive() {
  clearInterval(state.liveTimer);
  await liveTick();
  state.liveTimer = setInterval(() => liveTick().catch((e) => flash(e.message, "error")), 2000);
}

async function liveTick() {
  if ($("#view-live").hidden) return clearInterval(state.liveTimer);
  const before = state.previous;
  const now = await fetchMetrics();
  state.previous = now;
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  const rate = (id) => (before && seconds > 0 ? Math.max(0, (now.agents[id].calls - ((before.agents[id] || {}).calls || 0)) / seconds) : 0);
  const ids = Object.keys(now.agents).sort();
  const sum = (f) => ids.reduce((n, id) => n + f(now.agents[id], id), 0);
  const totalRate = sum((_, id) => rate(id));
  state.history.push(totalRate);
  if (state.history.length > 60) state.history.shift();
  $("#live-cards").replaceChildren(
    card("in flight", sum((a) => a.inflight)),
    card("calls", sum((a) => a.calls)),
    card("calls/s", totalRate.toFixed(2)),
    card("errors", sum((a) => a.errors)),
    card("worker restarts", now.totals.restarts),
    card("package loads", Object.entries(now.totals.loads).map(([k, v]) => `${v} ${k}`).join(" · ") || "0"));
  drawLine($("#live-chart"), state.history, "calls/s (all agents)");
  fill($("#live-table tbody"), ids.map((id) => {
    const a = now.agents[id];
    return el("tr", { dataset: { agent: id } },
      el("td", { text: id }), el("td", { class: "num", text: a.inflight }), el("td", { class: "num", text: a.calls }),
      el("td", { class: "num", text: rate(id).toFixed(2) }), el("td", { class: "num" + (a.errors ? " bad" : ""), text: a.errors }),
      el("td", { class: "num", text: fmtMs(a.mean) }), el("td", { class: "num", text: fmtMs(a.p50) }),
      el("td", { class: "num", text: fmtMs(a.p95) }),
      el("td", { text: Object.entries(a.codes).map(([c, n]) => `${c} ${n}`).join(", ") || "–" }));
  }), "No calls yet.");
}

// ---- charts (plain SVG) ----------------------------------------------------------------

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Drawn at the element's own pixel size, so text is never stretched.
function frame(target) {
  const w = Math.max(300, Math.round(target.getBoundingClientRect().width)), h = 140;
  target.setAttribute("viewBox", `0 0 ${w} ${h}`);
  return [w, h];
}

function drawLine(target, values, title) {
  const [w, h] = frame(target), max = Math.max(1e-9, ...values);
  if (values.length < 2) return target.replaceChildren(svg("text", { x: 12, y: 20, class: "axis" }, `${title} · collecting samples…`));
  const step = w / Math.max(values.length - 1, 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 14 - (v / max) * (h - 28)).toFixed(1)}`).join(" ");
  target.replaceChildren(
    svg("text", { x: 4, y: 12, class: "axis" }, `${title} · max ${max.toFixed(2)}`),
    svg("polyline", { points, class: "line" }));
}

function drawBars(target, buckets) {
  const [w, h] = frame(target), max = Math.max(1, ...buckets.map((b) => b.calls));
  const slot = w / Math.max(buckets.length, 1), gap = Math.min(4, slot * 0.2);
  const nodes = [svg("text", { x: 4, y: 12, class: "axis" }, `max ${max} calls`)];
  buckets.forEach((b, i) => {
    const bh = ((h - 34) * b.calls) / max, eh = ((h - 34) * b.errors) / max;
    const x = i * slot + gap / 2, bw = slot - gap;
    const bar = svg("rect", { x, y: h - 18 - bh, width: bw, height: bh, class: "bar" });
    bar.append(svg("title", {}, `${b.label}: ${b.calls} calls, ${b.errors} errors`));
    nodes.push(bar);
    if (eh) nodes.push(svg("rect", { x, y: h - 18 - eh, width: bw, height: eh, class: "bar-error" }));
    const every = Math.ceil(buckets.length / 8);
    if (i % every === 0) nodes.push(svg("text", { x: x + bw / 2, y: h - 4, class: "axis", "text-anchor": "middle" }, b.label));
  });
  target.replaceChildren(...nodes);
}

// ---- usage -----------------------------------------------------------------------------

async function loadUsage() {
  const days = Number($("#usage-range").value);
  const agent = $("#usage-agent").value;
  const picker = $("#usage-agent");
  if (picker.options.length <= 1) for (const a of state.agents) picker.append(el("option", { value: a.id, text: a.id }));
  const to = new Date(), from = new Date(to.getTime() - days * 86400000);
  const q = (extra) => `/runtime/usage?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}${agent ? "&agent=" + encodeURIComponent(agent) : ""}&${extra}`;
  // Hours for a day (from the records), days otherwise (from the ledger's own grouping).
  const [byAgent, byCaller, overTime] = await Promise.all([
    api(q("group_by=agent&limit=0")), api(q("group_by=caller&limit=0")),
    days === 1 ? api(q("limit=10000")) : api(q("group_by=day&limit=0"))]);
  const t = byAgent.totals;
  $("#usage-cards").replaceChildren(card("calls", t.calls), card("errors", t.errors ?? 0),
    card("time in handlers", fmtMs(t.duration_ms)), card("bytes in / out", `${t.bytes_in ?? 0} / ${t.bytes_out ?? 0}`),
    card("reported", fmtReported(t.reported)));
  const buckets = days === 1 ? hourly(overTime.records, to) : daily(overTime.groups, from, days);
  $("#usage-chart-title").textContent = days === 1 ? "Calls per hour" : "Calls per day";
  drawBars($("#usage-chart"), buckets);
  const rows = (groups, kind) => (groups || []).sort((a, b) => b.calls - a.calls).map((g) =>
    el("tr", { dataset: { [kind]: g.key } }, el("td", { text: g.key || "(anonymous)" }), el("td", { class: "num", text: g.calls }),
      el("td", { class: "num", text: g.errors ?? 0 }), el("td", { class: "num", text: fmtMs(g.duration_ms) }),
      el("td", { text: fmtReported(g.reported) })));
  fill($("#usage-agents tbody"), rows(byAgent.groups, "agent"), "No calls in this period.");
  fill($("#usage-callers tbody"), rows(byCaller.groups, "caller"), "No calls in this period.");
}

function daily(groups, from, days) {
  const by = Object.fromEntries((groups || []).map((g) => [g.key, g]));
  const out = [];
  for (let i = 0; i <= days; i++) {
    const day = new Date(from.getTime() + i * 86400000).toISOString().slice(0, 10);
    const g = by[day] || {};
    out.push({ label: day.slice(5), calls: g.calls || 0, errors: g.errors || 0 });
  }
  return out;
}

function hourly(records, to) {
  const start = Math.floor(to.getTime() / 3600000) - 23;
  const out = Array.from({ length: 24 }, (_, i) => ({ label: new Date((start + i) * 3600000).getHours() + "h", calls: 0, errors: 0 }));
  for (const r of records || []) {
    const i = Math.floor(new Date(r.started_at).getTime() / 3600000) - start;
    if (i < 0 || i > 23) continue;
    out[i].calls++;
    if (r.outcome !== "ok") out[i].errors++;
  }
  return out;
}

// ---- runs ------------------------------------------------------------------------------

async function loadRuns(openId) {
  const status = $("#runs-status").value;
  const data = await api("/runs?limit=100" + (status ? "&status=" + status : ""));
  fill($("#runs-table tbody"), data.runs.map((r) =>
    el("tr", { dataset: { run: r.run_id }, class: "clickable", onclick: () => { location.hash = "runs/" + r.run_id; } },
      el("td", { class: "mono", text: r.run_id.slice(0, 8) }), el("td", { text: r.agent }),
      el("td", {}, badge(r.status)), el("td", { text: fmtTime(r.created_at) }), el("td", { class: "num", text: runTook(r) }))),
  "No runs yet.");
  if (openId) await openRun(openId);
  else $("#run-detail").hidden = true;
}

async function openRun(id) {
  if (state.runStream) state.runStream.abort();
  for (const tr of $$("#runs-table tr")) tr.classList.toggle("selected", tr.dataset.run === id);
  const run = await api("/runs/" + encodeURIComponent(id));
  $("#run-detail").hidden = false;
  $("#run-title").textContent = `Run ${id.slice(0, 8)} · ${run.agent}`;
  showRunFacts(run);
  const cancel = $("#run-cancel");
  cancel.onclick = async () => {
    try { await api(`/runs/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} }); flash("Cancel requested."); }
    catch (e) { flash(e.message, "error"); }
  };
  const list = $("#run-events");
  list.replaceChildren();
  const abort = new AbortController();
  state.runStream = abort;
  const response = await fetch(`/runs/${encodeURIComponent(id)}/events`, { headers: headers({ Accept: "text/event-stream" }), signal: abort.signal });
  if (!response.ok) return flash(`events: HTTP ${response.status}`, "error");
  readEvents(response, (e) => {
    list.append(eventItem(e));
    if (e.event === "done" || e.event === "error") refreshRun(id);
  }).catch(() => {});
}

const runTook = (r) => (r.started_at && r.finished_at ? fmtMs(new Date(r.finished_at) - new Date(r.started_at)) : "–");

function showRunFacts(run) {
  const facts = { status: run.status, version: run.version, created: fmtTime(run.created_at), started: fmtTime(run.started_at), finished: fmtTime(run.finished_at), took: runTook(run) };
  if (run.error) facts.error = `${run.error.code}: ${run.error.error}`;
  $("#run-facts").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, k === "status" ? badge(v) : v)]));
  $("#run-cancel").hidden = !["queued", "running"].includes(run.status);
}

// The stream ended: the run's final facts, in the detail and in its row.
async function refreshRun(id) {
  const run = await api("/runs/" + encodeURIComponent(id)).catch(() => null);
  if (!run) return;
  showRunFacts(run);
  const row = $(`#runs-table tr[data-run="${CSS.escape(id)}"]`);
  if (row) { row.children[2].replaceChildren(badge(run.status)); row.children[4].textContent = runTook(run); }
}

function eventItem(e) {
  const data = parseJson(e.data);
  return el("li", { class: "event " + e.event, dataset: { event: e.event } },
    el("span", { class: "tag", text: e.event + (e.id ? " #" + e.id : "") }),
    el("code", { text: typeof data === "string" ? data : JSON.stringify(data) }));
}

// ---- invoke: a form built from the agent's JSON Schema ---------------------------------

async function openInvoke(id) {
  if (!state.agents.length) state.agents = (await api("/runtime/agents")).agents;
  const select = $("#invoke-agent");
  select.replaceChildren(...state.agents.map((a) => el("option", { value: a.id, text: a.id })));
  if (id && state.agents.some((a) => a.id === id)) select.value = id;
  buildForm();
}

function currentAgent() {
  return state.agents.find((a) => a.id === $("#invoke-agent").value);
}

// Fields for a flat object schema; anything else (or no schema) is edited as raw JSON.
function formable(schema) {
  return schema && typeof schema === "object" && schema.properties && typeof schema.properties === "object";
}

function buildForm() {
  const agent = currentAgent();
  const fields = $("#invoke-fields");
  fields.replaceChildren();
  if (!agent) return;
  $("#invoke-about").textContent = agent.description || "";
  $("#invoke-stream").checked = (agent.capabilities || []).includes("streaming");
  const schema = agent.input_schema;
  const useRaw = !formable(schema);
  $("#invoke-use-raw").checked = useRaw;
  $("#invoke-use-raw").disabled = useRaw;
  $("#invoke-raw").value = "{}";
  if (!useRaw) {
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties)) fields.append(field(name, prop || {}, required.has(name)));
  }
  toggleRaw();
  $("#invoke-events").replaceChildren();
  $("#invoke-output").textContent = "";
  $("#invoke-status").textContent = useRaw ? "This agent declares no input fields: edit the JSON." : "";
}

function kindOf(prop) {
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== "null") : prop.type;
  if (prop.enum) return "enum";
  if (t === "string" || t === "integer" || t === "number" || t === "boolean") return t;
  return "json";
}

function field(name, prop, required) {
  const kind = kindOf(prop);
  const attrs = { name, "data-kind": kind, id: "field-" + name, required: required && kind !== "boolean" };
  let input;
  if (kind === "enum") {
    input = el("select", attrs, required ? null : el("option", { value: "", text: "–" }),
      prop.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v) })));
    if (prop.default !== undefined) input.value = JSON.stringify(prop.default);
  } else if (kind === "boolean") {
    input = el("input", Object.assign(attrs, { type: "checkbox" }));
    input.checked = prop.default === true;
  } else if (kind === "integer" || kind === "number") {
    input = el("input", Object.assign(attrs, { type: "number", step: kind === "integer" ? 1 : "any", min: prop.minimum, max: prop.maximum }));
    if (prop.default !== undefined) input.value = prop.default;
  } else if (kind === "string") {
    const long = (prop.maxLength || 0) > 200 || prop.format === "textarea";
    input = el(long ? "textarea" : "input", Object.assign(attrs, { minlength: prop.minLength, maxlength: prop.maxLength, pattern: prop.pattern }));
    if (prop.default !== undefined) input.value = prop.default;
  } else {
    input = el("textarea", Object.assign(attrs, { rows: 2, spellcheck: "false", placeholder: prop.type === "array" ? "[ ]  (JSON)" : "JSON" }));
    if (prop.default !== undefined) input.value = JSON.stringify(prop.default);
  }
  const hint = [prop.type && [].concat(prop.type).join(" | "), prop.description].filter(Boolean).join(" — ");
  return el("label", { class: kind === "boolean" ? "check" : "" }, kind === "boolean" ? input : null,
    el("span", {}, name, required ? el("b", { class: "req", text: " *" }) : null),
    kind === "boolean" ? null : input, hint ? el("small", { class: "hint", text: hint }) : null);
}

function formValue() {
  const value = {};
  for (const input of $$("#invoke-fields [name]")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") { value[input.name] = input.checked; continue; }
    if (input.value === "") continue;
    if (kind === "integer" || kind === "number") value[input.name] = Number(input.value);
    else if (kind === "enum") value[input.name] = JSON.parse(input.value);
    else if (kind === "json") {
      try { value[input.name] = JSON.parse(input.value); }
      catch { throw new Error(`${input.name}: not valid JSON`); }
    } else value[input.name] = input.value;
  }
  return value;
}

function toggleRaw() {
  const raw = $("#invoke-use-raw").checked;
  if (raw && $("#invoke-fields").children.length) {
    try { $("#invoke-raw").value = JSON.stringify(formValue(), null, 2); } catch { /* keep the text */ }
  }
  $("#invoke-fields").hidden = raw;
  $("#invoke-raw-label").hidden = !raw;
}

function inputValue() {
  if (!$("#invoke-use-raw").checked) return formValue();
  let value;
  try { value = JSON.parse($("#invoke-raw").value || "{}"); }
  catch (e) { throw new Error("The input is not valid JSON: " + e.message); }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("The input must be a JSON object.");
  return value;
}

async function invoke(ev) {
  ev.preventDefault();
  const agent = currentAgent();
  if (!agent) return;
  const status = $("#invoke-status"), output = $("#invoke-output"), events = $("#invoke-events");
  events.replaceChildren();
  output.textContent = "";
  let body;
  try { body = inputValue(); } catch (e) { status.textContent = e.message; status.className = "error"; return; }
  const path = `/agents/${encodeURIComponent(agent.id)}`;
  const started = performance.now();
  const took = () => fmtMs(performance.now() - started);
  status.className = "";
  $("#invoke-submit").disabled = true;
  try {
    if ($("#invoke-as-run").checked) {
      const run = await api(path + "/runs", { method: "POST", body });
      status.textContent = `run ${run.run_id} ${run.status}`;
      location.hash = "runs/" + run.run_id;
    } else if ($("#invoke-stream").checked) {
      status.textContent = "streaming…";
      status.dataset.state = "streaming";
      const response = await api(path + "/invoke", { method: "POST", body, accept: "text/event-stream" });
      let count = 0, failed = false;
      await readEvents(response, (e) => {
        if (e.event === "message") count++;
        if (e.event === "error") failed = true;
        events.append(eventItem(e));
        status.textContent = `streaming… ${count} item${count === 1 ? "" : "s"}`;
      });
      status.textContent = `${failed ? "failed" : "done"}: ${count} item${count === 1 ? "" : "s"} in ${took()}`;
      status.dataset.state = failed ? "error" : "done";
      status.className = failed ? "error" : "ok";
    } else {
      status.textContent = "calling…";
      status.dataset.state = "calling";
      const result = await api(path + "/invoke", { method: "POST", body });
      output.textContent = JSON.stringify(result.data, null, 2);
      status.textContent = `ok in ${took()}`;
      status.dataset.state = "done";
      status.className = "ok";
    }
  } catch (e) {
    status.textContent = `${e.status ? e.status + " " : ""}${e.code ? e.code + ": " : ""}${e.message}`;
    status.dataset.state = "error";
    status.className = "error";
  } finally {
    $("#invoke-submit").disabled = false;
  }
}

// ---- wiring ----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    if (await signIn($("#credential").value.trim())) { $("#credential").value = ""; route(); }
  });
  $("#logout").addEventListener("click", () => signOut());
  $("#load-form").addEventListener("submit", loadPackage);
  $("#reload").addEventListener("click", reloadSources);
  $("#invoke-form").addEventListener("submit", invoke);
  $("#invoke-agent").addEventListener("change", () => { history.replaceState(null, "", "#invoke/" + $("#invoke-agent").value); buildForm(); });
  $("#invoke-use-raw").addEventListener("change", toggleRaw);
  $("#usage-range").addEventListener("change", () => loadUsage().catch((e) => flash(e.message, "error")));
  $("#usage-agent").addEventListener("change", () => loadUsage().catch((e) => flash(e.message, "error")));
  $("#runs-status").addEventListener("change", () => loadRuns().catch((e) => flash(e.message, "error")));
  for (const b of $$("[data-refresh]")) b.addEventListener("click", route);
  window.addEventListener("hashchange", route);
  // A stored credential, or none at all (auth off), may already be enough.
  await signIn(state.credential);
  document.body.dataset.ready = "1";
  route();
});
