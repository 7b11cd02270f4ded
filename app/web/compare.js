// The compare view, #compare/3,4,5?splits=train,test&smooth=0.6&logx=1&logy=1: the runs' curves overlaid, the spec
// fields that differ among them, their final numbers side by side, and the comparison as PNG and CSV.
// Each curve is read whole up to COMPARE_POINTS points; a longer one as that many points that keep its shape
// (the API's downsampling: extremes of each stretch, first, last and best).
"use strict";

const COMPARE_POINTS = 10000;
let compareCharts = [], compared = null;  // {ids, jobs: Map id -> job, curves: Map id -> {train, test}}

function compareOptions() {
  const splits = ["train", "test"].filter((split) => $(`compare-${split}`).checked);
  return { splits, smooth: Number($("compare-smooth").value), logx: $("compare-logx").checked, logy: $("compare-logy").checked };
}

function compareHash(ids, options) {
  const query = new URLSearchParams({ splits: options.splits.join(","), smooth: String(options.smooth) });
  if (options.logx) query.set("logx", "1");
  if (options.logy) query.set("logy", "1");
  return `#compare/${ids.join(",")}?${query}`;
}

function setCompareOptions(query) {
  const splits = (query.get("splits") ?? "train,test").split(",");
  for (const split of ["train", "test"]) $(`compare-${split}`).checked = splits.includes(split);
  $("compare-smooth").value = query.get("smooth") || "0";
  $("compare-logx").checked = query.get("logx") === "1";
  $("compare-logy").checked = query.get("logy") === "1";
  $("compare-smooth-shown").textContent = Number($("compare-smooth").value).toFixed(2);
}

function splitCurves(points) {  // the API's points as per-split columns, in step order
  const curves = { train: { steps: [], loss: [], accuracy: [] }, test: { steps: [], loss: [], accuracy: [] } };
  for (const p of points) {
    const curve = curves[p.split];
    curve.steps.push(p.step); curve.loss.push(p.loss); curve.accuracy.push(p.accuracy);
  }
  return curves;
}

function smoothed(values, weight) {  // an exponential moving average, debiased at the start (TensorBoard's)
  if (!weight) return values;
  let average = 0;
  return values.map((value, i) => { average = average * weight + (1 - weight) * value; return average / (1 - weight ** (i + 1)); });
}

async function openCompare(ids, query) {
  $("compare-section").hidden = false;
  setCompareOptions(query);
  selected.clear(); ids.forEach((id) => selected.add(id)); showSelection(); renderTable();
  $("compare-title").textContent = `Comparing ${ids.map((id) => `job ${id}`).join(", ")}`;
  $("compare-error").textContent = "";
  const read = await Promise.all(ids.map(async (id) => {
    try {
      const [job, metrics] = await Promise.all([api(`/jobs/${id}`), api(`/jobs/${id}/metrics?max_points=${COMPARE_POINTS}`)]);
      return { id, job, curves: splitCurves(metrics.points) };
    } catch (error) { return { id, error: `job ${id}: ${error.message}` }; }
  }));
  await kindsKnown();  // each kind's defaults: which of its own fields a job set
  if (location.hash.split("?")[0] !== `#compare/${ids.join(",")}`) return;  // left while reading
  $("compare-error").textContent = read.filter((r) => r.error).map((r) => r.error).join("\n");
  const found = read.filter((r) => !r.error);
  compared = { ids: found.map((r) => r.id), jobs: new Map(found.map((r) => [r.id, r.job])), curves: new Map(found.map((r) => [r.id, r.curves])) };
  showCompareTables();
  drawCompare();
}

function showCompareTables() {
  const jobs = compared.ids.map((id) => compared.jobs.get(id));
  const label = (job) => (job.name ? `${job.id}: ${job.name}` : `job ${job.id}`);
  const finals = [["status", (job) => job.status], ["test accuracy", (job) => fixed((job.final_metrics || {}).test_accuracy, 4)],
    ["best test accuracy", (job) => fixed((job.final_metrics || {}).best_test_accuracy, 4)],
    ["train loss", (job) => fixed((job.final_metrics || {}).train_loss, 4)],
    ["steps/s", (job) => fixed((job.final_metrics || {}).steps_per_second, 1)], ["running", (job) => seconds(job.running_seconds)]];
  const head = document.createElement("tr");
  head.append(Object.assign(document.createElement("th"), { textContent: "" }), ...jobs.map((job, i) => {
    const th = document.createElement("th");
    th.append(Object.assign(document.createElement("span"), { className: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` }),
      jobLink(job.id, label(job)));
    return th;
  }));
  const rowsOf = (entries) => entries.map(([name, value]) => {
    const tr = document.createElement("tr");
    tr.dataset.field = name;
    tr.append(Object.assign(document.createElement("th"), { textContent: name }), ...jobs.map((job) => cell(value(job))));
    return tr;
  });
  $("compare-finals").replaceChildren(head.cloneNode(true), ...rowsOf(finals));
  // first the fields every compared kind has, where the jobs differ; then each kind's own fields that its jobs set
  // away from that kind's defaults (a NumPy MLP beside a PyTorch one: not every torch-only field)
  const every = [...new Set(jobs.flatMap((job) => Object.keys(job.spec)))].filter((field) => field !== "name");
  const inAll = (field) => jobs.every((job) => field in job.spec);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const shared = every.filter((field) => inAll(field) && new Set(jobs.map((job) => JSON.stringify(job.spec[field]))).size > 1);
  const ownRows = [];
  for (const model of [...new Set(jobs.map((job) => job.model))]) {
    const defaults = (kinds[model] || {}).defaults || {}, ofKind = jobs.filter((job) => job.model === model);
    const own = every.filter((field) => !inAll(field) && ofKind.some((job) => field in job.spec && !same(job.spec[field], defaults[field])));
    if (!own.length) continue;
    const group = document.createElement("tr");
    group.className = "group";
    group.append(Object.assign(document.createElement("th"), { colSpan: jobs.length + 1, textContent: `${model}'s own fields, set away from its defaults` }));
    ownRows.push(group, ...rowsOf(own.map((field) => [field, (job) => (field in job.spec ? shownValue(job.spec[field]) : "")])));
  }
  $("compare-diff").replaceChildren(head, ...rowsOf(shared.map((field) => [field, (job) => shownValue(job.spec[field])])), ...ownRows);
  $("compare-same").textContent = shared.length || ownRows.length ? "" : "Their specs differ in nothing but the name.";
}

function drawCompare() {
  if (!compared) return;
  const options = compareOptions();
  compareCharts.forEach((c) => c.destroy());
  compareCharts = [];
  for (const [metric, target] of [["loss", $("compare-loss")], ["accuracy", $("compare-accuracy")]]) {
    const tables = [], series = [{ label: "step" }];
    compared.ids.forEach((id, i) => {
      const job = compared.jobs.get(id);
      for (const split of options.splits) {
        const curve = compared.curves.get(id)[split];
        let steps = curve.steps, values = smoothed(curve[metric], split === "train" ? options.smooth : 0);
        if (options.logx) { const keep = steps.map((s) => s > 0); steps = steps.filter((_, k) => keep[k]); values = values.filter((_, k) => keep[k]); }
        if (metric === "loss" && options.logy) values = values.map((v) => (v > 0 ? v : null));  // a log axis has no 0
        if (!steps.length) continue;
        tables.push([steps, values]);
        series.push({ label: `${job.name || `job ${id}`} ${split}`, stroke: PALETTE[i % PALETTE.length], width: split === "test" ? 2 : 1,
          dash: split === "train" ? [5, 4] : undefined, spanGaps: true, points: { show: split === "test" && steps.length < 60 } });
      }
    });
    const data = tables.length ? uPlot.join(tables) : [[]];
    compareCharts.push(new uPlot({
      title: metric + (options.smooth && options.splits.includes("train") ? ` (train smoothed ${options.smooth})` : ""),
      width: Math.max(300, target.clientWidth || 600), height: 320, axes: themedAxes(),
      scales: { x: { time: false, distr: options.logx ? 3 : 1 }, y: { distr: metric === "loss" && options.logy ? 3 : 1 } }, series,
    }, data, target));
  }
}

for (const id of ["compare-train", "compare-test", "compare-smooth", "compare-logx", "compare-logy"]) {
  $(id).addEventListener("input", () => {
    $("compare-smooth-shown").textContent = Number($("compare-smooth").value).toFixed(2);
    if (!compared) return;
    history.replaceState(null, "", compareHash(compared.ids, compareOptions()));  // the URL says what is shown
    drawCompare();
  });
}

async function compareCsv() {  // every point of every compared curve, a column for the job (the API writes it)
  const response = await fetch(`/compare.csv?jobs=${compared.ids.join(",")}`, { headers: headers() });
  if (!response.ok) throw new Error(`the comparison's CSV: ${response.status}`);
  return response.text();
}

$("compare-csv").addEventListener("click", async () => {
  try { saveBlob(new Blob([await compareCsv()], { type: "text/csv" }), `compare-${compared.ids.join("-")}.csv`); }
  catch (error) { $("compare-error").textContent = error.message; }
});
for (const [button, metric, split] of [["compare-png-accuracy", "accuracy", "test"], ["compare-png-loss", "loss", "train"]]) {
  $(button).addEventListener("click", () => {
    download(`/plots/compare.png?jobs=${compared.ids.join(",")}&metric=${metric}&split=${split}`,
      `compare-${compared.ids.join("-")}-${split}-${metric}.png`).catch((error) => { $("compare-error").textContent = error.message; });
  });
}

function closeCompare() {
  compareCharts.forEach((c) => c.destroy());
  compareCharts = [];
  compared = null;
}
