// cropland curate: the review page. Plain JS, no build step, no third-party code.
"use strict";

const PAGE = 200;
const state = {
  token: localStorage.getItem("cropland-token") || "",
  items: [], cursor: -1, offset: 0, total: 0,
  selection: new Set(), detail: null, images: new Map(), busy: false,
};
const $ = (sel) => document.querySelector(sel);

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    showLogin("Token refused: " + (await response.json()).detail);
    throw new ApiError(response.status, "not signed in");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}
const getJson = async (path) => (await api(path)).json();

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A change is sent with one id; a network failure is retried with the same id, so the
// server applies it at most once.
async function postChange(path, body) {
  body.decision_id = newId();
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await api(path, { method: "POST", body: JSON.stringify(body) })).json();
    } catch (e) {
      if (e instanceof ApiError || attempt >= 2) throw e;
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
    }
  }
}

async function imageUrl(id, kind) {
  const key = `${id}/${kind}`;
  if (!state.images.has(key)) {
    const promise = api(`/api/samples/${encodeURIComponent(id)}/image/${kind}`)
      .then((r) => r.blob()).then((b) => URL.createObjectURL(b));
    promise.catch(() => state.images.delete(key));
    state.images.set(key, promise);
  }
  return state.images.get(key);
}

const lazy = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const img = entry.target;
    lazy.unobserve(img);
    imageUrl(img.dataset.id, "RGB").then((url) => { img.src = url; }).catch(() => {});
  }
}, { root: null, rootMargin: "200px" });

// ---- sign in -----------------------------------------------------------------------
function showLogin(error = "") {
  $("#login-error").textContent = error;
  if (!$("#login").open) $("#login").showModal();
  $("#token").focus();
}

async function signIn(token) {
  state.token = token;
  try {
    const me = await getJson("/api/me");
    localStorage.setItem("cropland-token", token);
    $("#login").open && $("#login").close();
    $("#reviewer").textContent = me.reviewer;
    $("#dataset").textContent = me.dataset;
    await loadFacets();
    await loadPage(0);
  } catch (e) {
    if (!(e instanceof ApiError && e.status < 500)) showLogin(String(e.message || e));
  }
}

// ---- data --------------------------------------------------------------------------
async function loadFacets() {
  const facets = await getJson("/api/facets");
  for (const [name, values] of Object.entries(facets)) {
    const select = document.querySelector(`#filters [name=${name}]`);
    select.length = 1;
    for (const v of values) select.add(new Option(String(v), String(v)));
  }
}

function filterQuery() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("#filters"))) if (value) params.set(key, value);
  return params;
}

async function loadPage(offset, cursor = 0) {
  const params = filterQuery();
  params.set("offset", offset);
  params.set("limit", PAGE);
  const page = await getJson(`/api/samples?${params}`);
  Object.assign(state, { items: page.items, offset: page.offset, total: page.total });
  renderGrid();
  $("#range").textContent = page.total
    ? `${offset + 1}-${offset + page.items.length} of ${page.total}` : "no sample matches";
  await refreshProgress();
  if (state.items.length) await select(Math.min(Math.max(cursor, 0), state.items.length - 1));
  else clearDetail();
}

async function refreshProgress() {
  renderProgress(await getJson("/api/progress"));
}

function renderProgress(p) {
  $("#progress").innerHTML = "";
  const parts = [
    ["samples", p.total], ["auto accepted", p.quality.accepted], ["auto review", p.quality.review],
    ["auto rejected", p.quality.rejected], ["to review", p.to_review],
    ["accepted by reviewers", p.decided.accept], ["rejected by reviewers", p.decided.reject],
  ];
  for (const [label, value] of parts) {
    const span = document.createElement("span");
    span.dataset.counter = label;
    span.append(`${label}: `);
    const b = document.createElement("b");
    b.textContent = value;
    span.append(b);
    $("#progress").append(span);
  }
}

// ---- rendering ---------------------------------------------------------------------
function cell(item, index) {
  const div = document.createElement("div");
  div.className = "cell" + (item.decision ? " decided" : "");
  div.dataset.id = item.id;
  div.dataset.status = item.status;
  div.title = `${item.id}\nquality: ${item.quality}${item.reasons.length ? " (" + item.reasons.join("; ") + ")" : ""}` +
    (item.decision ? `\n${item.decision} by ${item.reviewer}` : "");
  const img = document.createElement("img");
  img.alt = item.id;
  img.dataset.id = item.id;
  lazy.observe(img);
  const dot = document.createElement("span");
  dot.className = `dot st-${item.status}`;
  const tag = document.createElement("div");
  tag.className = "tag";
  tag.textContent = `${item.label} ${item.year}-${String(item.month).padStart(2, "0")}`;
  div.append(img, dot, tag);
  if (index !== undefined) {
    div.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey) toggleSelection(item.id);
      else select(index);
    });
  }
  return div;
}

function renderGrid() {
  const grid = $("#grid");
  grid.innerHTML = "";
  state.items.forEach((item, i) => grid.append(cell(item, i)));
  markGrid();
}

function markGrid() {
  for (const div of $("#grid").children) {
    const i = state.items.findIndex((it) => it.id === div.dataset.id);
    div.classList.toggle("current", i === state.cursor);
    div.classList.toggle("selected", state.selection.has(div.dataset.id));
  }
  $("#selection").textContent = `${state.selection.size} selected`;
}

function updateCell(item) {
  const old = $(`#grid .cell[data-id="${item.id}"]`);
  if (!old) return;
  const i = state.items.findIndex((it) => it.id === item.id);
  state.items[i] = item;
  old.replaceWith(cell(item, i));
  markGrid();
}

function clearDetail() {
  state.cursor = -1;
  state.detail = null;
  $("#title").textContent = "no sample";
  for (const id of ["#badges", "#months", "#reasons", "#metrics"]) $(id).innerHTML = "";
}

function badge(text, cls = "plain") {
  const span = document.createElement("span");
  span.className = cls;
  span.textContent = text;
  return span;
}

async function select(index) {
  state.cursor = index;
  markGrid();
  const item = state.items[index];
  const current = $("#grid .cell.current");
  if (current) current.scrollIntoView({ block: "nearest" });
  const detail = await getJson(`/api/samples/${encodeURIComponent(item.id)}`);
  if (state.items[state.cursor]?.id !== item.id) return;  // moved on meanwhile
  state.detail = detail;
  renderDetail(detail);
}

function renderDetail(d) {
  $("#title").textContent = d.id;
  $("#detail").dataset.id = d.id;
  $("#detail").dataset.status = d.status;
  const badges = $("#badges");
  badges.innerHTML = "";
  badges.append(badge(d.status, `st-${d.status}`), badge(`quality: ${d.quality}`),
    badge(d.label), badge(`${d.year}-${String(d.month).padStart(2, "0")}`), badge(d.province),
    badge(d.split || "no split"));
  if (d.decision) badges.append(badge(`${d.decision} by ${d.reviewer}${d.decision_reason ? ": " + d.decision_reason : ""}`));
  showImage("#img-rgb", d.id, "RGB");
  showImage("#img-index", d.id, $("#index-type").value);
  showImage("#img-mask", d.id, "MASK");
  const months = $("#months");
  months.innerHTML = "";
  for (const other of d.same_point) {
    const div = cell(other);
    if (other.id === d.id) div.classList.add("current");
    div.addEventListener("click", () => openSample(other.id));
    months.append(div);
  }
  const reasons = $("#reasons");
  reasons.innerHTML = "";
  for (const r of d.reasons.length ? d.reasons : ["no problem found"]) {
    const li = document.createElement("li");
    li.textContent = r;
    reasons.append(li);
  }
  const table = $("#metrics");
  table.innerHTML = "";
  for (const [k, v] of Object.entries(d.metrics)) {
    const row = table.insertRow();
    row.insertCell().textContent = k;
    row.insertCell().textContent = typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(4)) : String(v ?? "-");
  }
}

function showImage(sel, id, kind) {
  const img = $(sel);
  img.removeAttribute("src");
  imageUrl(id, kind).then((url) => { if (state.detail?.id === id) img.src = url; }).catch(() => {});
}

async function openSample(id) {
  const i = state.items.findIndex((it) => it.id === id);
  if (i >= 0) return select(i);
  const detail = await getJson(`/api/samples/${encodeURIComponent(id)}`);
  state.detail = detail;
  renderDetail(detail);
}

// ---- review actions ----------------------------------------------------------------
function message(text, error = false) {
  $("#message").textContent = text;
  $("#message").className = error ? "error" : "";
}

// A change's answer carries the changed samples and the new counters: show them as they are.
function showChange(result) {
  for (const item of result.items) updateCell(item);
  renderProgress(result.progress);
}

// Returns whether the change was saved.
async function decide(decision, ids, advance) {
  if (!ids.length) return false;
  const reason = $("#reason").value.trim() ||
    (decision === "reject" && ids.length === 1 && state.detail?.reasons.length ? state.detail.reasons.join("; ") : "");
  try {
    const result = await postChange("/api/decisions", { sample_ids: ids, decision, reason });
    message(`${decision === "accept" ? "accepted" : "rejected"} ${result.entries.length} sample(s)`);
    $("#reason").value = "";
    showChange(result);
    if (advance && state.cursor < state.items.length - 1) await select(state.cursor + 1);
    else if (state.cursor >= 0) await select(state.cursor);
    return true;
  } catch (e) {
    message(`not saved: ${e.message}`, true);
    return false;
  }
}

async function undo() {
  try {
    const result = await postChange("/api/undo", {});
    const ids = result.entries.map((e) => e.sample_id);
    message(`undone: ${ids.join(", ")}`);
    showChange(result);
    const i = state.items.findIndex((it) => it.id === ids[0]);
    await select(i >= 0 ? i : Math.max(state.cursor, 0));
  } catch (e) {
    message(e.message, true);
  }
}

async function move(step) {
  const next = state.cursor + step;
  if (next >= 0 && next < state.items.length) return select(next);
  if (step > 0 && state.offset + PAGE < state.total) return loadPage(state.offset + PAGE, 0);
  if (step < 0 && state.offset > 0) return loadPage(Math.max(state.offset - PAGE, 0), PAGE - 1);
}

function toggleSelection(id) {
  if (state.selection.has(id)) state.selection.delete(id);
  else state.selection.add(id);
  markGrid();
}

const current = () => (state.detail ? [state.detail.id] : []);

// One change at a time: a key held down or pressed twice before the answer is ignored.
async function exclusive(action) {
  if (state.busy) return;
  state.busy = true;
  try { await action(); } finally { state.busy = false; }
}

function onKey(event) {
  if (event.target.closest("input, select, textarea, dialog") || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    a: () => exclusive(() => decide("accept", current(), true)),
    r: () => exclusive(() => decide("reject", current(), true)),
    n: () => move(1), ArrowRight: () => move(1),
    p: () => move(-1), ArrowLeft: () => move(-1),
    u: () => exclusive(undo),
    x: () => state.detail && toggleSelection(state.detail.id),
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

function wire() {
  $("#login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value.trim()); });
  $("#logout").addEventListener("click", () => {
    localStorage.removeItem("cropland-token");
    state.token = "";
    showLogin();
  });
  $("#filters").addEventListener("change", () => { state.selection.clear(); loadPage(0); });
  $("#index-type").addEventListener("change", () => state.detail && showImage("#img-index", state.detail.id, $("#index-type").value));
  $("#accept").addEventListener("click", () => exclusive(() => decide("accept", current(), true)));
  $("#reject").addEventListener("click", () => exclusive(() => decide("reject", current(), true)));
  $("#next").addEventListener("click", () => move(1));
  $("#prev").addEventListener("click", () => move(-1));
  $("#undo").addEventListener("click", () => exclusive(undo));
  $("#prev-page").addEventListener("click", () => state.offset > 0 && loadPage(Math.max(state.offset - PAGE, 0)));
  $("#next-page").addEventListener("click", () => state.offset + PAGE < state.total && loadPage(state.offset + PAGE));
  $("#select-page").addEventListener("click", () => { state.items.forEach((it) => state.selection.add(it.id)); markGrid(); });
  $("#clear-selection").addEventListener("click", () => { state.selection.clear(); markGrid(); });
  for (const button of document.querySelectorAll("[data-bulk]")) {
    button.addEventListener("click", async () => {
      const ids = [...state.selection];
      let saved = false;
      await exclusive(async () => { saved = await decide(button.dataset.bulk, ids, false); });
      if (!saved) return;  // keep the selection to retry
      state.selection.clear();
      markGrid();
    });
  }
  document.addEventListener("keydown", onKey);
}

wire();
if (state.token) signIn(state.token);
else showLogin();
