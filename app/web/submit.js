// The new-job form: a preset or any spec as JSON, submitted, or planned first (POST /jobs?dry_run=true).
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

