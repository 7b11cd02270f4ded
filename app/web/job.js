// A job's page: its state, outcome, lineage, spec, log tail, live curves and system samples, the actions that
// fit its status, and prediction by dropping images.
"use strict";

let stopJob = null, charts = [], curve = new Map(), shownJob = null, system = [], shownOwner = null;
let openings = 0;  // each openJob's number: an older one still awaiting an answer stops there

function chart(target, title) {
  const opts = {
    title, width: Math.max(300, target.clientWidth || 500), height: 260, scales: { x: { time: false } }, axes: themedAxes(),
    series: [{ label: "step" }, { label: "train", stroke: "#175cd3", spanGaps: true },
             { label: "test", stroke: "#dc6803", spanGaps: true, points: { show: true, size: 5 } }],
  };
  return new uPlot(opts, [[], [], []], target);
}

function systemChart(target) {
  const opts = {
    title: "system (fraction)", width: Math.max(300, target.clientWidth || 500), height: 200,
    scales: { x: { time: false } }, axes: themedAxes(),
    series: [{ label: "step" }, { label: "CPU of cpus", stroke: "#12b76a", spanGaps: true },
             { label: "data wait", stroke: "#7a5af8", spanGaps: true },
             { label: "GPU busy", stroke: "#f04438", spanGaps: true }],
  };
  return new uPlot(opts, [[], [], [], []], target);
}

function addSystem(samples) {
  system.push(...samples);
  system.sort((a, b) => a.step - b.step);
  charts[2].setData([system.map((s) => s.step), system.map((s) => s.cpu), system.map((s) => s.data_wait),
                     system.map((s) => s.gpu_util)]);
  const last = system[system.length - 1];
  if (last) {
    $("job-system").textContent = `memory ${last.rss_mb.toFixed(0)} MB, CPU ${(100 * last.cpu).toFixed(0)}% of its cpus` +
      (last.data_wait == null ? "" : `, ${(100 * last.data_wait).toFixed(1)}% of step time preparing batches`) +
      (last.gpu_util == null ? "" : `, GPU ${(100 * last.gpu_util).toFixed(0)}% busy, ${last.gpu_mem_mb.toFixed(0)} MB`);
  }
}

function showAlerts(alerts) {
  $("job-alerts").replaceChildren(...alerts.map((a) => {
    const li = document.createElement("li");
    li.textContent = `alert ${a.rule} (${a.when}${a.action === "stop" ? ", stopped the job" : ""}): ${a.message}`;
    return li;
  }));
}

function redraw() {
  const steps = [...curve.keys()].sort((a, b) => a - b);
  const column = (key) => steps.map((s) => curve.get(s)[key] ?? null);
  charts[0].setData([steps, column("train_loss"), column("test_loss")]);
  charts[1].setData([steps, column("train_accuracy"), column("test_accuracy")]);
}

const ACTIVE = new Set(["queued", "running"]);



// What a job's page says beyond its curves: outcome, lineage, the spec with the fields it chose marked.
async function showJobFacts(job) {
  const metrics = job.final_metrics || {};
  const facts = [
    ["status", job.status], ["attempts", String(job.attempts)],
    ["where", job.placement ? Object.entries(job.placement).map(([k, v]) => `${k} ${v}`).join(", ") : "—"],
    ["queued", seconds(job.queued_seconds)], ["running", seconds(job.running_seconds)],
    ["test accuracy", fixed(metrics.test_accuracy, 4)],
    ["best test accuracy", fixed(metrics.best_test_accuracy, 4)],
    ["train loss", fixed(metrics.train_loss, 4)],
    ["steps/s", fixed(metrics.steps_per_second, 1)],
    ["device, precision", metrics.device ? `${metrics.device}, ${metrics.precision || "float32"}` : "—"],
  ];
  $("job-outcome").replaceChildren(...facts.flatMap(([term, value]) => [
    Object.assign(document.createElement("dt"), { textContent: term }),
    Object.assign(document.createElement("dd"), { textContent: value }),
  ]));
  const lineage = [];
  const item = (...parts) => { const li = document.createElement("li"); li.append(...parts); lineage.push(li); };
  if (job.spec.init_from_job) item("started from ", jobLink(job.spec.init_from_job, `job ${job.spec.init_from_job}`));
  if (job.reproduces) item("reproduces ", jobLink(job.reproduces, `job ${job.reproduces}`));
  if (job.sweep) item("trial ", String(job.sweep.trial), " of ",
    Object.assign(document.createElement("a"), { href: `#sweep/${job.sweep.id}`, textContent: `sweep ${job.sweep.id}` }));
  try {  // the jobs started from this one
    const children = await api(`/jobs?${new URLSearchParams({ where: `init_from_job=${job.id}`, sort: "id", limit: "20" })}`);
    if (shownJob !== job.id) return;
    if (children.count) item("started from it: ", ...children.data.flatMap((child, i) => [i ? ", " : "", jobLink(child.id)]),
      children.count > children.data.length ? ` and ${children.count - children.data.length} more` : "");
  } catch { /* the lineage without its children */ }
  if (!lineage.length) item("trained from scratch, its own run");
  const shown = lineage.map((li) => li.innerHTML).join("\n");
  if ($("job-lineage").dataset.shown !== shown) {  // as it was: left alone (a link under the pointer stays clickable)
    $("job-lineage").replaceChildren(...lineage);
    $("job-lineage").dataset.shown = shown;
  }
  await kindsKnown();  // GET /models, read once by the New job form
  const defaults = (kinds[job.model] || {}).defaults || {};
  $("job-spec").tBodies[0].replaceChildren(...Object.entries(job.spec).map(([field, value]) => {
    const tr = document.createElement("tr");
    const chosen = JSON.stringify(defaults[field]) !== JSON.stringify(value);
    if (chosen) tr.className = "chosen";
    tr.append(Object.assign(document.createElement("td"), { textContent: field }),
      Object.assign(document.createElement("td"), { textContent: JSON.stringify(value) }));
    return tr;
  }));
}

// Each attempt at the job (shown once there is more than one): where, when, how far, how it ended, and for whom
// a preempted one made room.
async function showAttempts(job) {
  if (job.attempts < 2) { $("job-attempts-box").hidden = true; return; }
  let attempts;
  try { attempts = (await api(`/jobs/${job.id}/attempts`)).data; } catch { return; }
  if (shownJob !== job.id) return;
  $("job-attempts").tBodies[0].replaceChildren(...attempts.map((a) => {
    const tr = document.createElement("tr");
    const ran = a.ended_at ? seconds((Date.parse(a.ended_at) - Date.parse(a.started_at)) / 1000) : "running";
    const outcome = document.createElement("td");
    outcome.append(a.outcome || "—");
    if (a.preempted_for) outcome.append(" for ", jobLink(a.preempted_for));
    tr.append(...[String(a.number), a.executor || "—", new Date(a.started_at).toLocaleString(), ran,
      `${a.resumed_from_step ?? 0} → ${a.steps_done ?? "…"}`].map((text) =>
      Object.assign(document.createElement("td"), { textContent: text })), outcome);
    return tr;
  }));
  $("job-attempts-box").hidden = false;
  $("job-attempts-box").open = true;
}

async function showLogTail(id) {
  try {
    const response = await fetch(`/jobs/${id}/logs?tail=40`, { headers: headers() });
    if (response.ok && shownJob === id) $("job-log-text").textContent = (await response.text()) || "(nothing printed yet)";
  } catch { /* the next progress event tries again */ }
}

function showJobState(job) {
  $("job-status").textContent = job.status;
  $("job-status").className = `status status-${job.status}`;
  if (job.error) $("job-error").textContent = job.error;
  if (job.waiting_reason !== undefined) $("job-waiting").textContent = job.waiting_reason ? `waiting: ${job.waiting_reason}` : "";
  // actions that fit its status: cancel while it may still run, delete once it has ended, download a model it has
  if (job.status) {
    if (job.owner !== undefined) shownOwner = job.owner;  // a status event carries no owner
    const changes = mayChange(shownOwner);
    $("cancel").hidden = !ACTIVE.has(job.status) || !changes;
    $("delete").hidden = ACTIVE.has(job.status) || !changes;
    $("annotations").hidden = !changes;
  }
  if (job.trained_model !== undefined) $("download").hidden = !job.trained_model;
  if (job.spec) { showJobFacts(job); showAttempts(job); }
  if (job.tags !== undefined && document.activeElement.closest("#annotations") === null) {  // not while typing
    $("edit-name").value = job.name || "";
    $("edit-tags").value = job.tags.join(", ");
    $("edit-notes").value = job.notes || "";
  }
  if (job.alerts_fired) showAlerts(job.alerts_fired);
  if (job.reproducibility !== undefined) {
    $("job-record").hidden = !job.reproducibility;
    $("job-record-text").textContent = job.reproducibility ? JSON.stringify(job.reproducibility, null, 2) : "";
  }
}

async function openJob(id) {
  if (stopJob) stopJob();
  const opening = ++openings, current = () => opening === openings;
  shownJob = id;
  shownOwner = null;
  $("job-section").hidden = false;
  $("predictions").replaceChildren();
  $("job-error").textContent = "";
  $("job-waiting").textContent = "";
  $("job-attempts-box").hidden = true;
  $("job-log-text").textContent = "";
  ["cancel", "download", "delete"].forEach((button) => { $(button).hidden = true; });
  let lastLogRead = 0;
  charts.forEach((c) => c.destroy());
  curve = new Map();
  system = [];
  let alerts = [];
  $("job-system").textContent = "";
  showAlerts([]);
  charts = [chart($("loss-chart"), "loss"), chart($("accuracy-chart"), "accuracy"), systemChart($("system-chart"))];
  $("plot-link").href = `/jobs/${id}/plot.png`;
  $("csv-link").href = `/jobs/${id}/metrics.csv`;
  try {
    const job = await api(`/jobs/${id}`);
    if (!current()) return;  // another job (or this one again) was opened meanwhile: this opening stops here
    $("job-title").textContent = job.name ? `Job ${job.id}: ${job.name} · ${job.model}` : `Job ${job.id} · ${job.model}`;
    showJobState(job);
    showLogTail(id);
    alerts = job.alerts_fired;
    const samples = (await api(`/jobs/${id}/system?max_points=500`)).samples;
    if (!current()) return;
    addSystem(samples);
  } catch (error) {
    if (current()) $("job-error").textContent = error.message;
    return;
  }
  stopJob = follow(`/jobs/${id}/events`, (name, data) => {
    if (!current()) return;  // a stream of an earlier opening (being stopped)
    if (name === "status" || name === "end") showJobState(data);
    if (name === "status" || name === "preempted") {  // its waiting reason and attempts, which the event leaves out
      api(`/jobs/${id}`).then((job) => { if (current()) showJobState(job); }).catch(() => {});
    }
    if (name === "end") {  // its record, model and last log lines, written at its end
      api(`/jobs/${id}`).then((job) => { if (current()) showJobState(job); }).catch(() => {});
      setTimeout(() => showLogTail(id), 1000);  // its log's last lines may follow its final status by a moment
    } else if (name === "progress") {
      if (Date.now() - lastLogRead > 3000) { lastLogRead = Date.now(); showLogTail(id); }
      $("job-progress").value = data.fraction;
      $("job-step").textContent = `step ${data.step} of ${data.max_steps}` +
        (data.steps_per_second ? `, ${data.steps_per_second.toFixed(1)} steps/s` : "");
    } else if (name === "points") {
      for (const p of data.points) {
        const entry = curve.get(p.step) || {};
        entry[`${p.split}_loss`] = p.loss; entry[`${p.split}_accuracy`] = p.accuracy;
        curve.set(p.step, entry);
      }
      redraw();
    } else if (name === "alert") {
      if (!alerts.some((a) => a.rule === data.rule)) { alerts = [...alerts, data]; showAlerts(alerts); }
    } else if (name === "system") {
      if (!system.some((s) => s.attempt === data.attempt && s.seconds === data.seconds)) addSystem([data]);
    } else if (name === "error") $("job-error").textContent = data.message;
  });
}

$("cancel").addEventListener("click", async () => {
  try { showJobState(await api(`/jobs/${shownJob}/cancel`, { method: "POST" })); }
  catch (error) { $("job-error").textContent = error.message; }
});

$("annotations").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("annotations-error").textContent = "";
  $("annotations-saved").textContent = "";
  const tags = $("edit-tags").value.split(",").map((tag) => tag.trim()).filter((tag) => tag);
  const body = { name: $("edit-name").value.trim() || null, tags, notes: $("edit-notes").value || null };
  try {
    const job = await api(`/jobs/${shownJob}`, { method: "PATCH", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    $("job-title").textContent = job.name ? `Job ${job.id}: ${job.name} · ${job.model}` : `Job ${job.id} · ${job.model}`;
    if (shownRows.some((row) => row.id === job.id)) upsertRow(rowOf(job));
    $("annotations-saved").textContent = "saved";
  } catch (error) { $("annotations-error").textContent = error.message; }
});

$("delete").addEventListener("click", async () => {
  if (!confirm(`Delete job ${shownJob} with its curve, log and model? This cannot be undone.`)) return;
  try { await api(`/jobs/${shownJob}`, { method: "DELETE" }); location.hash = "#runs"; }
  catch (error) { $("job-error").textContent = error.message; }
});

$("download").addEventListener("click", () => {
  download(`/jobs/${shownJob}/model`, `job-${shownJob}.safetensors`).catch((error) => { $("job-error").textContent = error.message; });
});

async function classify(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  try {
    const result = await api(`/predict?job_id=${shownJob}&top_k=3`, { method: "POST", body: form });
    $("predictions").replaceChildren(...result.predictions.map((p) => {
      const li = document.createElement("li");  // each file its own answer: its classes, or why it was refused
      if (p.error) { li.className = "error"; li.textContent = `${p.filename}: ${p.error.message}`; return li; }
      li.textContent = `${p.filename}: ` + p.top_k.map((t) => `${t.label} ${(100 * t.probability).toFixed(1)}%`).join(", ");
      return li;
    }));
  } catch (error) { $("job-error").textContent = error.message; }
}

const drop = $("drop");
drop.addEventListener("click", () => $("files").click());
drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("files").click(); } });
$("files").addEventListener("change", () => classify($("files").files));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); classify(event.dataTransfer.files); });


function closeJob() {
  if (stopJob) stopJob();
  stopJob = null;
  shownJob = null;
  openings++;  // an opening still awaiting an answer stops there
}
