// The runs table: live (the newest jobs, as /events streams them) or filtered and sorted by the API
// (GET /jobs?tag=&name_contains=&where=&sort=), with a column for each spec field that differs among the
// rows shown, the rest summed up in one line; ticked rows open the compare view.
"use strict";

let shownRows = [];  // the rows in the order shown
let stopJobs = null, liveTable = true;
const selected = new Set();  // job ids ticked for comparing
const HIDDEN_FIELDS = new Set(["name", "model"]);  // columns of their own

function rowOf(job) {  // a GET /jobs item as the table's row (the /events rows come in this shape)
  if (!job.progress) return job;
  const metrics = job.final_metrics || {};
  return { id: job.id, name: job.name, model: job.model, status: job.status, step: job.progress.step,
    max_steps: job.progress.max_steps, test_accuracy: metrics.test_accuracy ?? null,
    best_test_accuracy: metrics.best_test_accuracy ?? null, steps_per_second: metrics.steps_per_second ?? null,
    started_at: job.started_at, finished_at: job.finished_at, tags: job.tags || [], spec: job.spec };
}

function wallSeconds(row) {
  if (!row.started_at) return null;
  const end = row.finished_at ? Date.parse(row.finished_at) : Date.now();
  return (end - Date.parse(row.started_at)) / 1000;
}

// Spec fields whose values differ among `rows` (in the order the specs list them), and those all share.
function specFieldsOf(rows) {
  const values = new Map();
  for (const row of rows) {
    for (const [field, value] of Object.entries(row.spec || {})) {
      if (!HIDDEN_FIELDS.has(field)) { if (!values.has(field)) values.set(field, new Set()); values.get(field).add(JSON.stringify(value)); }
    }
  }
  const differing = [], same = [];
  for (const [field, seen] of values) {
    const everywhere = rows.every((row) => row.spec && field in row.spec);
    if (seen.size > 1 || !everywhere) differing.push(field); else same.push([field, JSON.parse([...seen][0])]);
  }
  return { differing, same };
}

const FIXED_COLUMNS = [
  { label: "id", sort: "id", cell: (row) => cell(jobLink(row.id, String(row.id))) },
  { label: "name", sort: "name", cell: (row) => cell(row.name || "") },
  { label: "owner", sort: null, cell: (row) => cell(row.owner || "") },
  { label: "model", sort: "model", cell: (row) => cell(row.model) },
  { label: "status", sort: "status", cell: (row) => cell(row.status, `status status-${row.status}`) },
  { label: "progress", sort: null, cell: (row) => cell(`${row.step} / ${row.max_steps}`) },
  { label: "test acc.", sort: "-test_accuracy", cell: (row) => cell(row.test_accuracy == null ? "" : row.test_accuracy.toFixed(4), "number") },
  { label: "best", sort: "-best_test_accuracy", cell: (row) => cell(row.best_test_accuracy == null ? "" : row.best_test_accuracy.toFixed(4), "number") },
  { label: "steps/s", sort: "-steps_per_second", cell: (row) => cell(row.steps_per_second == null ? "" : row.steps_per_second.toFixed(1), "number") },
  { label: "wall", sort: null, cell: (row) => cell(row.started_at ? seconds(wallSeconds(row)) : "", "number") },
  { label: "tags", sort: null, cell: (row) => cell((row.tags || []).join(", ")) },
];

function sortable(field, rows) {  // what GET /jobs?sort= takes: spec fields holding numbers or texts
  return rows.every((row) => row.spec === undefined || !(field in row.spec) || ["number", "string"].includes(typeof row.spec[field]));
}

function headerCell(label, sortKey) {
  const th = document.createElement("th");
  if (!sortKey) { th.textContent = label; return th; }
  const current = $("filter-sort").value;
  const button = Object.assign(document.createElement("button"), { type: "button", className: "sort", textContent: label,
    title: `sort by ${sortKey.replace(/^-/, "")}` });
  if (current.replace(/^-/, "") === sortKey.replace(/^-/, "")) {
    button.textContent += current.startsWith("-") ? " ▼" : " ▲";
    th.setAttribute("aria-sort", current.startsWith("-") ? "descending" : "ascending");
  }
  button.addEventListener("click", () => sortBy(sortKey));
  th.append(button);
  return th;
}

function sortBy(sortKey) {  // the column's first order, then the other way on a second click
  const key = sortKey.replace(/^-/, ""), current = $("filter-sort").value;
  const next = current === sortKey ? (sortKey.startsWith("-") ? key : `-${key}`) : sortKey;
  const select = $("filter-sort");
  if (![...select.options].some((option) => option.value === next)) select.add(new Option(`${key}${next.startsWith("-") ? ", descending" : ""}`, next));
  select.value = next;
  $("filter-form").requestSubmit();
}

let renderPending = false;
function renderTable() {  // at most once a frame, whatever number of events came
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; drawTable(); });
}

function drawTable() {
  const { differing, same: sameFields } = specFieldsOf(shownRows);
  // the field sorted by and those a condition names keep their column, though every row shown may share a value
  const named = [$("filter-sort").value.replace(/^-/, ""), ...conditionsOf($("filter-where").value).map((c) => c.split(/[!<>=]/)[0])];
  const kept = sameFields.filter(([field]) => named.includes(field));
  differing.push(...kept.map(([field]) => field));
  const same = sameFields.filter(([field]) => !named.includes(field));
  const head = document.createElement("tr");
  head.append(Object.assign(document.createElement("th"), { textContent: "✓", title: "tick runs to compare them" }),
    ...FIXED_COLUMNS.map((column) => headerCell(column.label, column.sort)),
    ...differing.map((field) => headerCell(field, sortable(field, shownRows) ? field : null)));
  $("jobs").tHead.replaceChildren(head);
  $("jobs").tBodies[0].replaceChildren(...shownRows.map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    tr.dataset.tags = (row.tags || []).join(", ");
    const tick = Object.assign(document.createElement("input"), { type: "checkbox", checked: selected.has(row.id),
      title: `compare job ${row.id}` });
    tick.setAttribute("aria-label", `compare job ${row.id}`);
    tick.addEventListener("click", (event) => event.stopPropagation());
    tick.addEventListener("change", () => { if (tick.checked) selected.add(row.id); else selected.delete(row.id); showSelection(); });
    tr.append(cell(tick, "tick"), ...FIXED_COLUMNS.map((column) => column.cell(row)),
      ...differing.map((field) => cell(shownValue((row.spec || {})[field]), "field")));
    tr.addEventListener("click", (event) => { if (!event.target.closest("a")) location.hash = `#job/${row.id}`; });
    return tr;
  }));
  $("same-fields").textContent = shownRows.length > 1 && same.length
    ? `The same in all ${shownRows.length}: ` + same.map(([field, value]) => `${field} ${shownValue(value)}`).join(", ") : "";
}

function showSelection() {
  const button = $("compare-button");
  button.disabled = selected.size < 2;
  button.textContent = `Compare ${selected.size ? `(${selected.size})` : "ticked runs"}`;
}
$("compare-button").addEventListener("click", () => { location.hash = `#compare/${[...selected].join(",")}`; });

function upsertRow(row) {  // a live row: newest first
  const at = shownRows.findIndex((other) => other.id === row.id);
  if (at >= 0) shownRows[at] = row;
  else if (!liveTable) return;  // a filtered table keeps its rows: a new job may not match
  else { shownRows.push(row); shownRows.sort((a, b) => b.id - a.id); }
  renderTable();
}

// The filter form <-> the runs view's URL: #runs?tag=&name=&sort=&where=
function runsQueryOfForm() {
  const query = new URLSearchParams();
  for (const [name, id] of [["tag", "filter-tag"], ["name", "filter-name"], ["sort", "filter-sort"], ["where", "filter-where"]]) {
    const value = $(id).value.trim();
    if (value) query.set(name, value);
  }
  if ($("filter-mine").checked) query.set("mine", "1");
  return query;
}

// `optimizer=adam test_accuracy > 0.5, hidden_units=[800, 600, 400]`: one condition per part, split at
// commas, semicolons and spaces outside brackets.
function conditionsOf(text) {
  const squeezed = text.replace(/\s*(!=|>=|<=|=|>|<)\s*/g, "$1");
  const parts = [];
  let depth = 0, part = "";
  for (const char of squeezed) {
    if (char === "[") depth += 1; else if (char === "]") depth -= 1;
    if (depth <= 0 && /[\s,;]/.test(char)) { if (part) parts.push(part); part = ""; } else part += char;
  }
  if (part) parts.push(part);
  return parts;
}

const PAGE_ROWS = 200;

// The runs view's query as GET /jobs (and GET /jobs.csv) take it
function apiQueryOf(query) {
  const asked = new URLSearchParams();
  if (query.get("tag")) asked.set("tag", query.get("tag"));
  if (query.get("name")) asked.set("name_contains", query.get("name"));
  if (query.get("sort")) asked.set("sort", query.get("sort"));
  if (query.get("mine")) asked.set("mine", "true");
  for (const condition of conditionsOf(query.get("where") || "")) asked.append("where", condition);
  return asked;
}

async function showFiltered(query) {
  const offset = Math.max(0, Number(query.get("offset")) || 0);
  const asked = apiQueryOf(query);
  asked.set("limit", String(PAGE_ROWS));
  asked.set("offset", String(offset));
  $("filter-error").textContent = "";
  try {
    const page = await api(`/jobs?${asked}`);
    if (stopJobs) { stopJobs(); stopJobs = null; }
    liveTable = false;
    shownRows = page.data.map(rowOf);
    drawTable();
    const shown = page.count > page.data.length ? `, ${offset + 1}–${offset + page.data.length} shown` : "";
    $("connection").textContent = `${page.count} matching${shown} (not live: "All" follows every job again)`;
    showPager(query, offset, page.count);
  } catch (error) { $("filter-error").textContent = error.message; }
}

// Paging a filtered table: the offset is part of the runs view's URL.
function showPager(query, offset, count) {
  $("pager").hidden = count <= PAGE_ROWS;
  $("page-prev").disabled = offset === 0;
  $("page-next").disabled = offset + PAGE_ROWS >= count;
  $("page-prev").onclick = () => { query.set("offset", String(Math.max(0, offset - PAGE_ROWS))); location.hash = `#runs?${query}`; };
  $("page-next").onclick = () => { query.set("offset", String(offset + PAGE_ROWS)); location.hash = `#runs?${query}`; };
}

function followJobs() {
  if (stopJobs) stopJobs();
  $("pager").hidden = true;
  liveTable = true;
  $("filter-error").textContent = "";
  stopJobs = follow("/events", (name, data) => {
    if (name === "jobs") { shownRows = data.jobs; renderTable(); }
    else if (name === "job") upsertRow(data);
    else if (name === "gone") { shownRows = shownRows.filter((row) => row.id !== data.id); renderTable(); }
    $("connection").textContent = name === "error" ? `not connected: ${data.message}` : "live";
  });
}

let appliedRunsQuery = null;
function showRuns(query) {  // the runs view's state from its URL (the form follows it)
  $("filter-tag").value = query.get("tag") || "";
  $("filter-name").value = query.get("name") || "";
  $("filter-where").value = query.get("where") || "";
  $("filter-mine").checked = query.get("mine") === "1";
  const sort = query.get("sort") || "";
  if (sort && ![...$("filter-sort").options].some((option) => option.value === sort)) $("filter-sort").add(new Option(sort, sort));
  $("filter-sort").value = sort;
  const text = query.toString();
  if (text === appliedRunsQuery && (text ? true : stopJobs)) return;
  appliedRunsQuery = text;
  if (text) showFiltered(query); else followJobs();
}

$("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = runsQueryOfForm().toString();
  appliedRunsQuery = null;  // the same filter again reads the list again
  const hash = query ? `#runs?${query}` : "#runs";
  if (location.hash === hash) route(); else location.hash = hash;
});
$("filter-sort").addEventListener("change", () => $("filter-form").requestSubmit());
$("filter-mine").addEventListener("change", () => $("filter-form").requestSubmit());
$("runs-csv").addEventListener("click", () => {  // the table as the form filters it, every page
  $("filter-error").textContent = "";
  download(`/jobs.csv?${apiQueryOf(runsQueryOfForm())}`, "jobs.csv").catch((error) => { $("filter-error").textContent = error.message; });
});
$("filter-clear").addEventListener("click", () => {
  for (const id of ["filter-tag", "filter-name", "filter-where", "filter-sort"]) $(id).value = "";
  $("filter-mine").checked = false;
  $("filter-form").requestSubmit();
});
keyInput.addEventListener("change", async () => {
  if (keyInput.value.trim()) localStorage.setItem("apiKey", keyInput.value); else localStorage.removeItem("apiKey");
  await whoAmI();
  appliedRunsQuery = null;
  route();
});
