// The page's views, each with its URL: #runs?… (the runs table, filtered and sorted), #job/N, #compare/3,4,5,
// #sweeps, #sweep/N, #users and #executors (admins). The runs table stays on top; the other views open below it.
// Back and forward work through the hash.
"use strict";

const DETAIL_SECTIONS = ["job-section", "compare-section", "sweeps-section", "sweep-section", "users-section",
  "executors-section"];

function route() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(search || "");
  const [view, argument] = path.split("/");
  const opened = { job: "job-section", compare: "compare-section", sweeps: "sweeps-section", sweep: "sweep-section",
    users: "users-section", executors: "executors-section" }[view];
  for (const id of DETAIL_SECTIONS) if (id !== opened) $(id).hidden = true;
  if (opened !== "job-section") closeJob();
  if (opened !== "compare-section") closeCompare();
  if (opened !== "sweep-section") closeSweep();
  if (opened !== "executors-section") closeExecutors();
  document.querySelectorAll("header nav a").forEach((link) => link.toggleAttribute("aria-current",
    link.getAttribute("href") === `#${view === "sweep" ? "sweeps" : view || "runs"}`));
  if (!opened) { showRuns(query); return; }
  if (appliedRunsQuery === null) showRuns(new URLSearchParams());  // opened straight at a view: the live table
  if (view === "job" && /^\d+$/.test(argument)) openJob(Number(argument));
  else if (view === "compare" && /^\d+(,\d+)*$/.test(argument || "")) openCompare(argument.split(",").map(Number), query);
  else if (view === "sweeps") openSweeps();
  else if (view === "users") openUsers();
  else if (view === "executors") openExecutors();
  else if (view === "sweep" && /^\d+$/.test(argument)) openSweep(Number(argument));
  else { $(opened).hidden = true; showRuns(query); return; }
  $(opened).scrollIntoView({ block: "nearest" });
}

window.addEventListener("hashchange", route);
showSelection();
whoAmI().then(route);
