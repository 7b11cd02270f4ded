// Executors (#executors, admins): the workers and dispatchers, where each runs, what it runs now, and whether it
// is alive (a killed one stays listed as dead). Reread every few seconds while shown.
"use strict";

let executorsTimer = null;

function agoText(stamp) {
  const seconds = (Date.now() - new Date(stamp).getTime()) / 1000;
  return seconds < 120 ? `${Math.max(0, seconds).toFixed(0)} s ago` : `${(seconds / 60).toFixed(0)} min ago`;
}

async function showExecutors() {
  try {
    const listed = await api("/executors");
    $("executors").tBodies[0].replaceChildren(...listed.data.map((executor) => {
      const tr = document.createElement("tr");
      tr.dataset.name = executor.name;
      const state = executor.alive ? "alive" : "dead";
      const running = executor.running.length ? document.createElement("span") : "idle";
      if (executor.running.length) executor.running.forEach((id, i) => running.append(i ? ", " : "", jobLink(id, String(id))));
      tr.append(cell(executor.name), cell(executor.role || ""), cell(executor.host || ""), cell(String(executor.pid ?? "")),
        cell(executor.version || ""), cell(state, `status status-${state}`), cell(agoText(executor.seen_at)),
        cell(`${executor.cpus}`, "number"), cell(`${executor.gpus}`, "number"), cell(running));
      return tr;
    }));
    $("executors-count").textContent = `${listed.alive} alive of ${listed.data.length}`;
    $("executors-error").textContent = "";
  } catch (error) { $("executors-error").textContent = error.message; }
}

function openExecutors() {
  $("executors-section").hidden = false;
  closeExecutors();
  showExecutors();
  executorsTimer = setInterval(showExecutors, 5000);
}

function closeExecutors() {
  if (executorsTimer !== null) clearInterval(executorsTimer);
  executorsTimer = null;
}
