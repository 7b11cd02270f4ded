// The service's web page: a live jobs table, a submit form with a plan, a job page with live curves, cancel,
// model download and prediction by dropping images. Talks to the API only (same origin).
"use strict";

const PRESETS = {
  "PyTorch MLP, the assignment's defaults": { model: "torch_mlp" },
  "NumPy MLP, the assignment's defaults": { model: "numpy_mlp" },
  "MLP 800-600-400, Adam, 5000 steps": { model: "torch_mlp", hidden_units: [800, 600, 400], optimizer: "adam", max_steps: 5000 },
  "MLP 100-100-50-50-50-50, Adam, 5000 steps": { model: "torch_mlp", hidden_units: [100, 100, 50, 50, 50, 50], optimizer: "adam", max_steps: 5000 },
  "MLP 800-600-400, Adam, Tanh": { model: "torch_mlp", hidden_units: [800, 600, 400], optimizer: "adam", max_steps: 5000, activation: "tanh" },
  "MLP 800-600-400, Adam, batch norm": { model: "torch_mlp", hidden_units: [800, 600, 400], optimizer: "adam", max_steps: 5000, norm: "batchnorm" },
  "MLP 800-600-400, Adam, custom Layer Normalization": { model: "torch_mlp", hidden_units: [800, 600, 400], optimizer: "adam", max_steps: 5000, norm: "layernorm_manual" },
  "ConvNet, the assignment's defaults": { model: "convnet" },
  "ResNet18 from scratch, CIFAR stem": { model: "resnet18", stem: "cifar", augmentation: "crop_flip", optimizer: "sgd_momentum", learning_rate: 0.1, weight_decay: 0.0005, lr_schedule: "cosine", batch_size: 128 },
};
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("apiKey") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("apiKey", keyInput.value); followJobs(); });

function headers(extra = {}) {
  const key = keyInput.value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const message = (body && (body.message || body.detail)) || `${response.status} ${response.statusText}`;
    throw Object.assign(new Error(message), { status: response.status, body });
  }
  return body;
}

// Server-sent events over fetch (EventSource cannot send the API key); reconnects with Last-Event-ID when
// the stream drops or ends without `end` (the server ends idle streams), and after Retry-After on a 503.
function follow(path, onEvent) {
  const controller = new AbortController();
  let lastId = null, done = false;
  (async () => {
    while (!done && !controller.signal.aborted) {
      try {
        const extra = lastId === null ? {} : { "Last-Event-ID": lastId };
        const response = await fetch(path, { headers: headers(extra), signal: controller.signal });
        if (response.status === 503) {  // the process has all the streams it takes: again after Retry-After
          onEvent("error", { message: "busy, trying again" });
          await new Promise((resolve) => setTimeout(resolve, 1000 * Number(response.headers.get("Retry-After") || 5)));
          continue;
        }
        if (!response.ok) { onEvent("error", { message: `${response.status} ${response.statusText}` }); return; }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          buffer += value;
          let end;  // events end with a blank line; sse-starlette sends CRLF line ends
          while ((end = /\r?\n\r?\n/.exec(buffer)) !== null) {
            const block = buffer.slice(0, end.index); buffer = buffer.slice(end.index + end[0].length);
            let name = "message", data = "";
            for (const line of block.split(/\r?\n/)) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("id:")) lastId = line.slice(3).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (data) { onEvent(name, JSON.parse(data)); if (name === "end") done = true; }
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (!done) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => controller.abort();
}

// --- the jobs table -----------------------------------------------------------------------------
const rows = new Map();
let stopJobs = null;

function renderRow(job, inGivenOrder = false) {  // else newest first
  let tr = rows.get(job.id);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.id = job.id;
    tr.addEventListener("click", () => { location.hash = `#job/${job.id}`; });
    rows.set(job.id, tr);
    const body = document.querySelector("#jobs tbody");
    const after = inGivenOrder ? null : [...body.children].find((other) => Number(other.dataset.id) < job.id);
    body.insertBefore(tr, after || null);
  }
  const accuracy = job.test_accuracy == null ? "" : job.test_accuracy.toFixed(4);
  if (job.tags !== undefined) tr.dataset.tags = (job.tags || []).join(", ");
  const cells = [job.id, job.name || "", job.model, job.status, `${job.step} / ${job.max_steps}`, accuracy,
    tr.dataset.tags || ""];
  tr.replaceChildren(...cells.map((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (i === 3) td.className = `status status-${job.status}`;
    return td;
  }));
}

// The table: live (every job, newest first) or, with a filter, GET /jobs?tag=&name_contains= (read once).

async function showFiltered(tag, name, sort) {
  const query = new URLSearchParams({ limit: "200" });
  if (tag) query.set("tag", tag);
  if (name) query.set("name_contains", name);
  if (sort) query.set("sort", sort);
  $("filter-error").textContent = "";
  try {
    const page = await api(`/jobs?${query}`);
    if (stopJobs) { stopJobs(); stopJobs = null; }
    rows.clear();
    document.querySelector("#jobs tbody").replaceChildren();
    page.data.forEach((job) => renderRow({ ...job, step: job.progress.step, max_steps: job.progress.max_steps,
      test_accuracy: job.final_metrics ? job.final_metrics.test_accuracy : null }, true));
    $("connection").textContent = `${page.count} matching (not live: "All" follows every job again)`;
  } catch (error) { $("filter-error").textContent = error.message; }
}

$("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const tag = $("filter-tag").value.trim(), name = $("filter-name").value.trim(), sort = $("filter-sort").value;
  if (tag || name || sort) showFiltered(tag, name, sort); else followJobs();
});
$("filter-sort").addEventListener("change", () => $("filter-form").requestSubmit());
$("filter-clear").addEventListener("click", () => {
  $("filter-tag").value = ""; $("filter-name").value = ""; $("filter-sort").value = ""; followJobs();
});

function followJobs() {
  if (stopJobs) stopJobs();
  $("filter-error").textContent = "";
  stopJobs = follow("/events", (name, data) => {
    if (name === "jobs") { rows.clear(); document.querySelector("#jobs tbody").replaceChildren(); data.jobs.forEach(renderRow); }
    else if (name === "job") renderRow(data);
    else if (name === "gone") { const tr = rows.get(data.id); if (tr) { tr.remove(); rows.delete(data.id); } }
    $("connection").textContent = name === "error" ? `not connected: ${data.message}` : "live";
  });
}

// --- the submit form ----------------------------------------------------------------------------
for (const name of Object.keys(PRESETS)) $("preset").add(new Option(name, name));
function showPreset() { $("spec").value = JSON.stringify(PRESETS[$("preset").value], null, 2); }
$("preset").addEventListener("change", showPreset);
showPreset();

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("spec-error").textContent = "";
  let spec;
  try { spec = JSON.parse($("spec").value); } catch (error) { $("spec-error").textContent = `not JSON: ${error.message}`; return; }
  try {
    const job = await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec) });
    renderRow({ ...job, step: job.progress.step, max_steps: job.progress.max_steps, test_accuracy: null });
    location.hash = `#job/${job.id}`;
  } catch (error) {
    $("spec-error").textContent = error.message;
  }
});

// --- the plan: POST /jobs?dry_run=true, nothing queued --------------------------------------------
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  return seconds >= 120 ? `${(seconds / 60).toFixed(1)} min` : `${Math.round(seconds)} s`;
}

function megabytes(mb) { return mb < 10 ? mb.toFixed(1) : String(Math.round(mb)); }

function planLines(plan) {
  const lines = [
    `${plan.parameters.toLocaleString("en")} parameters; ${(plan.flops_per_train_step / 1e9).toFixed(2)} GFLOP a training step, ` +
      `${(plan.flops_per_evaluation / 1e12).toFixed(2)} TFLOP an evaluation (${plan.evaluations})`,
    `memory: ${megabytes(plan.parameter_memory_mb)} MB weights, gradients and optimizer state, ` +
      `${megabytes(plan.activation_memory_mb)} MB activations a batch` +
      (plan.probe_peak_memory_mb ? `; the probe peaked at ${megabytes(plan.probe_peak_memory_mb)} MB` : ""),
    `expected: ${duration(plan.expected_seconds)} (${plan.expected_from || plan.note || "nothing to go by yet: no earlier job of this shape"})`,
    `queue: ${plan.queue_position} ahead, wait ${duration(plan.expected_wait_seconds)}` +
      (plan.expected_wait_unknown ? ` (${plan.expected_wait_unknown})` : ""),
  ];
  if (plan.waiting_reason) lines.push(`it would wait: ${plan.waiting_reason}`);
  return lines;
}

$("plan-button").addEventListener("click", async () => {
  const button = $("plan-button"), list = $("plan");
  $("spec-error").textContent = "";
  list.hidden = true;
  let spec;
  try { spec = JSON.parse($("spec").value); } catch (error) { $("spec-error").textContent = `not JSON: ${error.message}`; return; }
  button.disabled = true;
  button.textContent = "Planning…";
  try {
    const plan = await api("/jobs?dry_run=true", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec) });
    list.replaceChildren(...planLines(plan).map((line) => Object.assign(document.createElement("li"), { textContent: line })));
    list.hidden = false;
  } catch (error) {
    $("spec-error").textContent = error.message;
  } finally {
    button.disabled = false;
    button.textContent = "Plan";
  }
});

// --- the job page -------------------------------------------------------------------------------
let stopJob = null, charts = [], curve = new Map(), shownJob = null, system = [];

function chart(target, title) {
  const opts = {
    title, width: Math.max(300, target.clientWidth || 500), height: 260, scales: { x: { time: false } },
    series: [{ label: "step" }, { label: "train", stroke: "#175cd3", spanGaps: true },
             { label: "test", stroke: "#dc6803", spanGaps: true, points: { show: true, size: 5 } }],
  };
  return new uPlot(opts, [[], [], []], target);
}

function systemChart(target) {
  const opts = {
    title: "system (fraction)", width: Math.max(300, target.clientWidth || 500), height: 200,
    scales: { x: { time: false } },
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
let kindDefaults = null;  // model kind -> its default spec (GET /models), read once

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 90 ? `${value.toFixed(1)} s` : value < 5400 ? `${(value / 60).toFixed(1)} min` : `${(value / 3600).toFixed(1)} h`;
}

function jobLink(id, text) {
  return Object.assign(document.createElement("a"), { href: `#job/${id}`, textContent: text });
}

// What a job's page says beyond its curves: outcome, lineage, the spec with the fields it chose marked.
async function showJobFacts(job) {
  const metrics = job.final_metrics || {};
  const number = (value, digits) => (typeof value === "number" ? value.toFixed(digits) : "—");  // null: none yet
  const facts = [
    ["status", job.status], ["attempts", String(job.attempts)],
    ["where", job.placement ? Object.entries(job.placement).map(([k, v]) => `${k} ${v}`).join(", ") : "—"],
    ["queued", seconds(job.queued_seconds)], ["running", seconds(job.running_seconds)],
    ["test accuracy", number(metrics.test_accuracy, 4)],
    ["best test accuracy", number(metrics.best_test_accuracy, 4)],
    ["train loss", number(metrics.train_loss, 4)],
    ["steps/s", number(metrics.steps_per_second, 1)],
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
  if (!lineage.length) item("trained from scratch, its own run");
  $("job-lineage").replaceChildren(...lineage);
  try {
    if (kindDefaults === null) kindDefaults = Object.fromEntries((await api("/models")).models.map((k) => [k.model, k.defaults]));
  } catch { kindDefaults = {}; }
  const defaults = kindDefaults[job.model] || {};
  $("job-spec").tBodies[0].replaceChildren(...Object.entries(job.spec).map(([field, value]) => {
    const tr = document.createElement("tr");
    const chosen = JSON.stringify(defaults[field]) !== JSON.stringify(value);
    if (chosen) tr.className = "chosen";
    tr.append(Object.assign(document.createElement("td"), { textContent: field }),
      Object.assign(document.createElement("td"), { textContent: JSON.stringify(value) }));
    return tr;
  }));
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
  // actions that fit its status: cancel while it may still run, delete once it has ended, download a model it has
  if (job.status) {
    $("cancel").hidden = !ACTIVE.has(job.status);
    $("delete").hidden = ACTIVE.has(job.status);
  }
  if (job.trained_model !== undefined) $("download").hidden = !job.trained_model;
  if (job.spec) showJobFacts(job);
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
  shownJob = id;
  $("job-section").hidden = false;
  $("predictions").replaceChildren();
  $("job-error").textContent = "";
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
    $("job-title").textContent = job.name ? `Job ${job.id}: ${job.name} · ${job.model}` : `Job ${job.id} · ${job.model}`;
    showJobState(job);
    showLogTail(id);
    alerts = job.alerts_fired;
    addSystem((await api(`/jobs/${id}/system?max_points=500`)).samples);
  } catch (error) { $("job-error").textContent = error.message; return; }
  stopJob = follow(`/jobs/${id}/events`, (name, data) => {
    if (name === "status" || name === "end") showJobState(data);
    if (name === "end") {  // its record, model and last log lines, written at its end
      api(`/jobs/${id}`).then(showJobState).catch(() => {});
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
    if (rows.has(job.id)) renderRow({ ...job, step: job.progress.step, max_steps: job.progress.max_steps,
      test_accuracy: job.final_metrics ? job.final_metrics.test_accuracy : null });
    $("annotations-saved").textContent = "saved";
  } catch (error) { $("annotations-error").textContent = error.message; }
});

$("delete").addEventListener("click", async () => {
  if (!confirm(`Delete job ${shownJob} with its curve, log and model? This cannot be undone.`)) return;
  try { await api(`/jobs/${shownJob}`, { method: "DELETE" }); location.hash = ""; }
  catch (error) { $("job-error").textContent = error.message; }
});

$("download").addEventListener("click", async () => {
  const response = await fetch(`/jobs/${shownJob}/model`, { headers: headers() });
  if (!response.ok) { $("job-error").textContent = (await response.json()).message; return; }
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(await response.blob()), download: `job-${shownJob}.safetensors`,
  });
  link.click();
  URL.revokeObjectURL(link.href);
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
$("files").addEventListener("change", () => classify($("files").files));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); classify(event.dataTransfer.files); });

function route() {
  const match = location.hash.match(/^#job\/(\d+)$/);
  if (match) openJob(Number(match[1]));
  else { if (stopJob) stopJob(); $("job-section").hidden = true; }
}
window.addEventListener("hashchange", route);
followJobs();
route();
