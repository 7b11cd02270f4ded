// What every view of the page shares: the API key, calls to the API, server-sent events, small formatters.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("apiKey") || "";

// Who the token is (GET /users/me): a user, the API_KEY or the single-user mode; null until known.
let me = null, whoAmIAsked = 0;

async function whoAmI() {  // the newest call wins: a sign-out right after a sign-in must not see the sign-in's answer
  const asked = ++whoAmIAsked;
  let found = null;
  try { found = await api("/users/me"); } catch { found = null; }
  if (asked !== whoAmIAsked) return me;
  me = found;
  $("whoami").textContent = me ? `${me.name} (${me.role})` : "not signed in";
  $("sign-out").hidden = !keyInput.value.trim();
  document.body.classList.toggle("viewer", Boolean(me && me.role === "viewer"));
  $("users-link").hidden = $("executors-link").hidden = !(me && me.role === "admin");
  return me;
}

// What the caller may change: anything as an admin, else what they own (a viewer nothing).
function mayChange(owner) {
  if (!me) return false;
  return me.role === "admin" || (me.role === "member" && owner === me.name);
}

$("sign-out").addEventListener("click", () => {
  keyInput.value = "";
  keyInput.dispatchEvent(new Event("change"));  // forgets the token (runs.js)
});

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

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// A file the API answers (with the key, which a plain link cannot send), saved under `filename`.
async function download(path, filename) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new Error((await response.json()).message || `${response.status}`);
  saveBlob(await response.blob(), filename);
}

function saveBlob(blob, filename) {
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
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

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 90 ? `${value.toFixed(1)} s` : value < 5400 ? `${(value / 60).toFixed(1)} min` : `${(value / 3600).toFixed(1)} h`;
}

const fixed = (value, digits) => (typeof value === "number" ? value.toFixed(digits) : "—");  // null: none yet

// A spec value as a cell shows it: lists without spaces, the rest as written.
function shownValue(value) {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function jobLink(id, text = `job ${id}`) {
  return Object.assign(document.createElement("a"), { href: `#job/${id}`, textContent: text });
}

function cell(content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content;
  if (className) td.className = className;
  return td;
}

// A tick label short enough for the axis at any magnitude: 0.25, 12.5, 3.4e+3, 1.2e+9, 5e-5.
function tickLabel(value) {
  if (value === null || value === undefined) return "";
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e4 || size < 1e-3)) return value.toExponential(1).replace(".0e", "e");
  return String(Number(value.toPrecision(4)));
}

// uPlot's axes in the colours of the page's theme (dark when the system is), the y axis labelled by `tickLabel`.
function themedAxes() {
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue("--ink").trim() || "#1d2430", grid = style.getPropertyValue("--line").trim() || "#e5e7eb";
  return [{ stroke: ink, grid: { stroke: grid } },
    { stroke: ink, grid: { stroke: grid }, values: (_chart, ticks) => ticks.map(tickLabel), size: 60 }];
}

const PALETTE = ["#175cd3", "#dc6803", "#12b76a", "#d92d20", "#7a5af8", "#0e9384", "#c11574", "#667085", "#ca8504", "#2e90fa"];
