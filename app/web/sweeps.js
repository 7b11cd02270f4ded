// Sweeps: the list (#sweeps) with a form that starts one from a preset (the assignment's questions), and a
// sweep's page (#sweep/N): its leaderboard, a parallel-coordinates view of the searched fields against the
// objective, the fields' importances, the rungs of its early stopping, and cancel. Reread every few seconds
// while it runs.
"use strict";

const WIDE = { model: "torch_mlp", hidden_units: [800, 600, 400], optimizer: "adam", learning_rate: 0.0001, max_steps: 5000 };
const SWEEP_PRESETS = {
  "Wide or deep (the report's two tuned MLPs)": { name: "wide or deep", base: { ...WIDE },
    search: { hidden_units: { choices: [[800, 600, 400], [100, 100, 50, 50, 50, 50]] } }, method: "grid" },
  "ELU or Tanh (the wide MLP)": { name: "activation", base: { ...WIDE }, search: { activation: { choices: ["elu", "tanh"] } }, method: "grid" },
  "Batch norm or the custom Layer Normalization": { name: "normalisation", base: { ...WIDE },
    search: { norm: { choices: ["none", "batchnorm", "layernorm_manual"] } }, method: "grid" },
  "Learning rate and batch size (TPE, early stopping)": { name: "learning rate", base: { ...WIDE, max_steps: 2000 },
    search: { learning_rate: { log_uniform: [0.00001, 0.01] }, batch_size: { choices: [100, 200, 400] } },
    method: "tpe", trials: 12, max_concurrent: 2, early_stopping: { method: "successive_halving", min_steps: 500, reduction_factor: 3 } },
};
let sweepTimer = null, shownSweep = null;

for (const name of Object.keys(SWEEP_PRESETS)) $("sweep-preset").add(new Option(name, name));
function showSweepPreset() { $("sweep-spec").value = JSON.stringify(SWEEP_PRESETS[$("sweep-preset").value], null, 2); }
$("sweep-preset").addEventListener("change", showSweepPreset);
showSweepPreset();

async function openSweeps() {
  $("sweeps-section").hidden = false;
  try {
    const page = await api("/sweeps?limit=100");
    $("sweeps").tBodies[0].replaceChildren(...page.data.map((sweep) => {
      const tr = document.createElement("tr");
      tr.dataset.id = sweep.id;
      const link = Object.assign(document.createElement("a"), { href: `#sweep/${sweep.id}`, textContent: String(sweep.id) });
      tr.append(cell(link), cell(sweep.name || ""), cell(sweep.status, `status status-${sweep.status}`), cell(sweep.method),
        cell(`${sweep.trials_created} / ${sweep.trials ?? "grid"}`), cell(sweep.best ? fixed(sweep.best.objective, 4) : "—", "number"),
        cell(sweep.best ? Object.entries(sweep.best.params).map(([f, v]) => `${f} ${shownValue(v)}`).join(", ") : ""));
      tr.addEventListener("click", (event) => { if (!event.target.closest("a")) location.hash = `#sweep/${sweep.id}`; });
      return tr;
    }));
    $("sweeps-count").textContent = `${page.count} sweep${page.count === 1 ? "" : "s"}`;
  } catch (error) { $("sweep-form-error").textContent = error.message; }
}

async function sendSweep(dryRun) {
  $("sweep-form-error").textContent = "";
  $("sweep-plan").hidden = true;
  let spec;
  try { spec = JSON.parse($("sweep-spec").value); } catch (error) { $("sweep-form-error").textContent = `not JSON: ${error.message}`; return; }
  try {
    const answer = await postJson(`/sweeps${dryRun ? "?dry_run=true" : ""}`, spec);
    if (!dryRun) { location.hash = `#sweep/${answer.id}`; return; }
    $("sweep-plan").textContent = `${answer.trials} trials, ${answer.max_concurrent} at a time; ` +
      `${answer.expected_steps.toLocaleString("en")} steps expected (${answer.steps_without_early_stopping.toLocaleString("en")} ` +
      `without early stopping); about ${duration(answer.expected_seconds)}`;
    $("sweep-plan").hidden = false;
  } catch (error) { $("sweep-form-error").textContent = error.message; }
}
$("sweep-form").addEventListener("submit", (event) => { event.preventDefault(); sendSweep(false); });
$("sweep-plan-button").addEventListener("click", () => sendSweep(true));

function rungsOf(spec) {  // the steps at which early stopping compares the trials
  const stopping = spec.early_stopping;
  if (!stopping) return null;
  const maxSteps = spec.base.max_steps, rungs = [];
  for (let step = stopping.min_steps; maxSteps === undefined ? rungs.length < 4 : step < maxSteps; step *= stopping.reduction_factor) rungs.push(step);
  return `${stopping.method.replace("_", " ")}: trials compared at steps ${rungs.join(", ")}; the best 1/${stopping.reduction_factor} go on at each`;
}

async function openSweep(id) {
  shownSweep = id;
  $("sweep-section").hidden = false;
  clearTimeout(sweepTimer);
  let sweep;
  try { sweep = await api(`/sweeps/${id}`); } catch (error) { $("sweep-error").textContent = error.message; return; }
  if (shownSweep !== id) return;
  $("sweep-error").textContent = sweep.error || "";
  $("sweep-title").textContent = `Sweep ${sweep.id}${sweep.name ? `: ${sweep.name}` : ""} · ${sweep.method}`;
  $("sweep-status").textContent = sweep.status;
  $("sweep-status").className = `status status-${sweep.status}`;
  $("sweep-cancel").hidden = sweep.status !== "running";
  const counts = Object.entries(sweep.counts).map(([status, n]) => `${n} ${status}`).join(", ");
  $("sweep-summary").textContent = `${sweep.trials_created} of ${sweep.trials} trials created (${counts || "none yet"}); ` +
    `${sweep.steps_spent.toLocaleString("en")} of ${sweep.steps_if_run_to_end.toLocaleString("en")} steps spent. ` +
    `Objective: test ${sweep.spec.objective.metric}, ${sweep.spec.objective.mode}.`;
  $("sweep-rungs").textContent = rungsOf(sweep.spec) || "No early stopping: every trial runs to its max_steps.";
  const fields = Object.keys(sweep.spec.search);
  const head = document.createElement("tr");
  head.append(...["rank", "trial", "job", "status", ...fields, "objective", "best", "steps"].map((text) => Object.assign(document.createElement("th"), { textContent: text })));
  $("leaderboard").tHead.replaceChildren(head);
  $("leaderboard").tBodies[0].replaceChildren(...sweep.leaderboard.map((trial, rank) => {
    const tr = document.createElement("tr");
    tr.dataset.trial = trial.number;
    tr.append(cell(trial.objective == null ? "" : String(rank + 1)), cell(String(trial.number)),
      cell(trial.job_id ? jobLink(trial.job_id, String(trial.job_id)) : "—"),
      cell(trial.status + (trial.status === "stopped_early" ? ` at ${trial.step}` : ""), `status status-${trial.status}`),
      ...fields.map((field) => cell(shownValue(trial.params[field]))), cell(fixed(trial.objective, 4), "number"),
      cell(fixed(trial.best, 4), "number"), cell(`${trial.step} / ${trial.max_steps ?? "—"}`));
    if (trial.error) tr.title = trial.error;
    return tr;
  }));
  drawParallel($("parallel"), sweep);
  showImportances(id);
  if (sweep.status === "running") sweepTimer = setTimeout(() => { if (shownSweep === id) openSweep(id); }, 5000);
}

async function showImportances(id) {
  try {
    const found = await api(`/sweeps/${id}/importances`);
    if (shownSweep !== id) return;
    const entries = Object.entries(found.importances);
    $("importances-note").textContent = entries.length
      ? `Share of the objective's variance each field explains (fANOVA over the ${found.trials_used} trials that ran to their end)`
      : `Importances need two trials that ran to their end with different values (${found.trials_used} so far).`;
    $("importances").replaceChildren(...entries.map(([field, share]) => {
      const li = document.createElement("li");
      li.dataset.field = field;
      const bar = Object.assign(document.createElement("span"), { className: "bar" });
      bar.style.width = `${Math.max(1, 100 * share).toFixed(1)}%`;
      li.append(Object.assign(document.createElement("span"), { className: "bar-label", textContent: `${field} ${(100 * share).toFixed(0)}%` }), bar);
      return li;
    }));
  } catch (error) { $("importances-note").textContent = error.message; }
}

// Parallel coordinates on a canvas: an axis per searched field (a choice's values spread evenly, a range
// linear or log as searched) and the objective last; a line per trial with an objective, coloured from
// the worst (pale) to the best (dark).
function drawParallel(canvas, sweep) {
  const fields = Object.keys(sweep.spec.search);
  const trials = sweep.leaderboard.filter((t) => t.objective != null);
  const width = canvas.clientWidth || 800, height = 320, ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue("--ink").trim() || "#1d2430";
  context.clearRect(0, 0, width, height);
  context.font = "12px system-ui, sans-serif";
  const axes = [...fields.map((field) => axisOf(sweep.spec.search[field], trials.map((t) => t.params[field]), field)),
    axisOf({ uniform: null }, trials.map((t) => t.objective), `test ${sweep.spec.objective.metric}`)];
  const top = 30, bottom = height - 30, left = 60, right = width - 60;
  const x = (i) => (axes.length === 1 ? (left + right) / 2 : left + (i * (right - left)) / (axes.length - 1));
  const y = (axis, value) => bottom - axis.position(value) * (bottom - top);
  const objectives = trials.map((t) => t.objective);
  const low = Math.min(...objectives), high = Math.max(...objectives);
  const goodness = (value) => { const share = high > low ? (value - low) / (high - low) : 1; return sweep.spec.objective.mode === "max" ? share : 1 - share; };
  for (const trial of [...trials].sort((a, b) => goodness(a.objective) - goodness(b.objective))) {  // the best drawn last, on top
    const values = [...fields.map((field) => trial.params[field]), trial.objective];
    context.strokeStyle = `hsl(215, 80%, ${75 - 45 * goodness(trial.objective)}%)`;
    context.lineWidth = 1 + goodness(trial.objective);
    context.beginPath();
    values.forEach((value, i) => { const point = [x(i), y(axes[i], value)]; if (i) context.lineTo(...point); else context.moveTo(...point); });
    context.stroke();
  }
  context.fillStyle = ink; context.strokeStyle = ink; context.lineWidth = 1;
  axes.forEach((axis, i) => {
    context.beginPath(); context.moveTo(x(i), top); context.lineTo(x(i), bottom); context.stroke();
    context.textAlign = "center";
    context.fillText(axis.name, x(i), top - 12);
    context.textAlign = "right";  // beside the axis, clear of the lines that meet it
    for (const [value, text] of axis.ticks) context.fillText(text, x(i) - 6, y(axis, value) + 4);
  });
  canvas.dataset.lines = String(trials.length);
  canvas.dataset.axes = axes.map((axis) => axis.name).join(",");
  $("parallel-note").textContent = trials.length ? "" : "No trial has an objective yet.";
}

function axisOf(dimension, values, name) {
  if (dimension.choices) {
    const keys = dimension.choices.map((choice) => JSON.stringify(choice));
    const at = (value) => (keys.length === 1 ? 0.5 : keys.indexOf(JSON.stringify(value)) / (keys.length - 1));
    return { name, position: at, ticks: dimension.choices.map((choice) => [choice, shownValue(choice)]) };
  }
  const log = Boolean(dimension.log_uniform);
  const [low, high] = dimension.log_uniform || dimension.uniform || [Math.min(...values), Math.max(...values)];
  const scale = (value) => (log ? Math.log(value) : value);
  const position = (value) => (scale(high) > scale(low) ? (scale(value) - scale(low)) / (scale(high) - scale(low)) : 0.5);
  const label = (value) => (Math.abs(value) < 0.01 && value !== 0 ? value.toExponential(0) : String(+value.toPrecision(3)));
  return { name, position, ticks: Number.isFinite(low) ? [[low, label(low)], [high, label(high)]] : [] };
}

$("sweep-cancel").addEventListener("click", async () => {
  try { await api(`/sweeps/${shownSweep}/cancel`, { method: "POST" }); openSweep(shownSweep); }
  catch (error) { $("sweep-error").textContent = error.message; }
});

function closeSweep() { clearTimeout(sweepTimer); shownSweep = null; }
