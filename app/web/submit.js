// The new-job form: a preset or any spec as JSON, submitted, or planned first (POST /jobs?dry_run=true); beside the
// JSON, a form of the kind's fields made from its JSON Schema (GET /models), which writes into the JSON.
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

for (const name of Object.keys(PRESETS)) $("preset").add(new Option(name, name));
function showPreset() {
  $("spec").value = JSON.stringify(PRESETS[$("preset").value], null, 2);
  showFields();
}
$("preset").addEventListener("change", showPreset);

// --- the kinds' fields, from their JSON Schemas -------------------------------------------------------
let kinds = {};  // model kind -> its entry of GET /models (description, package, version, defaults, json_schema)

async function loadKinds() {
  try { kinds = Object.fromEntries((await api("/models")).models.map((kind) => [kind.model, kind])); } catch { kinds = {}; }
  const presetKinds = new Set(Object.values(PRESETS).map((spec) => spec.model));
  for (const [model, kind] of Object.entries(kinds)) {  // a kind without a preset (a plugin's): its defaults
    if (presetKinds.has(model)) continue;
    const name = `${model}, its defaults` + (kind.package !== "cifar-jobs" ? ` (${kind.package} ${kind.version})` : "");
    PRESETS[name] = { model };
    $("preset").add(new Option(name, name));
  }
  $("kind").replaceChildren(...Object.entries(kinds).map(([model, kind]) =>
    Object.assign(new Option(model, model), { title: kind.description })));
  showFields();
}

function specInBox() {
  try { const spec = JSON.parse($("spec").value); return spec && typeof spec === "object" && !Array.isArray(spec) ? spec : null; }
  catch { return null; }
}

// One field's schema without its `null` alternative (an optional field), and whether it had one.
function plainSchema(schema) {
  if (!schema.anyOf) return schema;
  const others = schema.anyOf.filter((option) => option.type !== "null");
  return others.length === 1 ? { ...others[0], description: schema.description, default: schema.default } : {};
}

function fieldInput(name, schema) {
  const plain = plainSchema(schema);
  const shown = (value) => (value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value));
  let input;
  if (plain.enum || plain.type === "boolean") {
    input = document.createElement("select");
    const choices = plain.enum || [true, false];
    input.add(new Option(`default (${shown(schema.default)})`, ""));
    for (const choice of choices) input.add(new Option(shown(choice), JSON.stringify(choice)));
  } else {
    input = document.createElement("input");
    if (plain.type === "integer" || plain.type === "number") {
      input.type = "number";
      input.step = plain.type === "integer" ? "1" : "any";
      const low = plain.minimum ?? plain.exclusiveMinimum, high = plain.maximum ?? plain.exclusiveMaximum;
      if (low !== undefined) input.min = low;
      if (high !== undefined) input.max = high;
    } else {
      input.type = "text";
    }
    input.placeholder = shown(schema.default);
  }
  input.name = name;
  input.dataset.kind = plain.type === "string" && !plain.enum ? "text" : "json";
  return input;
}

function showFields() {
  const spec = specInBox(), kind = spec && kinds[spec.model];
  $("spec-fields").hidden = !kind;
  if (!kind) return;
  $("kind").value = spec.model;
  $("kind-about").textContent = kind.description;
  const properties = kind.json_schema.properties;
  $("fields").replaceChildren(...Object.entries(properties).filter(([name]) => name !== "model").map(([name, schema]) => {
    const label = document.createElement("label"), input = fieldInput(name, schema);
    label.title = schema.description || "";
    const range = [input.min && `≥ ${input.min}`, input.max && `≤ ${input.max}`].filter(Boolean).join(", ");
    label.append(Object.assign(document.createElement("span"), { textContent: name + (range ? ` (${range})` : "") }), input);
    if (spec[name] !== undefined) input.value = input.tagName === "SELECT" ? JSON.stringify(spec[name])
      : (input.dataset.kind === "text" ? spec[name] : JSON.stringify(spec[name]));
    return label;
  }));
}

// A field changed: its value goes into the JSON (emptied: taken out, so the default applies).
$("fields").addEventListener("change", (event) => {
  const input = event.target, spec = specInBox();
  if (!spec) { $("spec-error").textContent = "the spec is not a JSON object: fix it to use the fields"; return; }
  $("spec-error").textContent = "";
  if (input.value === "") delete spec[input.name];
  else if (input.dataset.kind === "text") spec[input.name] = input.value;
  else {
    try { spec[input.name] = JSON.parse(input.value); } catch { $("spec-error").textContent = `${input.name}: not JSON`; return; }
  }
  $("spec").value = JSON.stringify(spec, null, 2);
});

$("kind").addEventListener("change", () => {
  const spec = specInBox() || {};
  $("spec").value = JSON.stringify({ model: $("kind").value, ...(spec.name ? { name: spec.name } : {}) }, null, 2);
  showFields();
});
$("spec").addEventListener("change", showFields);

// Folded away, the runs table takes the whole width; the choice is remembered in this browser.
function foldNewJob(folded) {
  document.querySelector("main").classList.toggle("new-job-folded", folded);
  $("unfold-new-job").hidden = !folded;
  $("fold-new-job").setAttribute("aria-expanded", String(!folded));
  try { localStorage.setItem("new-job-folded", folded ? "1" : ""); } catch { /* storage off: not remembered */ }
}
$("fold-new-job").addEventListener("click", () => foldNewJob(true));
$("unfold-new-job").addEventListener("click", () => foldNewJob(false));
try { if (localStorage.getItem("new-job-folded")) foldNewJob(true); } catch { /* storage off */ }

showPreset();
const kindsLoaded = loadKinds();

// The kinds, read again when the first reading found none (the page was signed out then).
async function kindsKnown() {
  await kindsLoaded;
  if (!Object.keys(kinds).length) await loadKinds();
  return kinds;
}

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("spec-error").textContent = "";
  let spec;
  try { spec = JSON.parse($("spec").value); } catch (error) { $("spec-error").textContent = `not JSON: ${error.message}`; return; }
  try {
    const job = await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec) });
    upsertRow(rowOf(job));
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

