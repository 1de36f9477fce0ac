// @ts-check
// The call inspector's page: a live list of Dispatch calls (server-sent
// events from /inspect/events) and one call opened (/inspect/calls/ID).
// Plain DOM, no framework and no build step: the server sends this file as
// it is. Every value a client sent is put in the page as text, never as HTML.

/**
 * @typedef {{ id: number, time: string, apiId: string, hookType: string, hookName: string, plugin: string | null,
 *   outcome: string, ms: number, method: string, url: string, status: number | null, error: string | null, traceId: string | null }} CallSummary
 * @typedef {{ path: string[], kind: "added" | "removed" | "changed" }} Change
 * @typedef {CallSummary & { received: unknown, reply: unknown, changes: Change[], notes: string[],
 *   cut: { side: "received" | "reply", path: string[], bytes: number }[], masked: boolean }} CallDetail
 * @typedef {{ grpcurl: string, client: string, warning: string | null } | { unavailable: string }} Replay
 * @typedef {{ call: CallDetail, logs: Record<string, unknown>[], logsDropped: number, replay: Replay }} DetailResponse
 */

/** @param {string} id */
function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/**
 * An element with text children (strings become text nodes: never HTML).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

const list = /** @type {HTMLTableSectionElement} */ (byId("calls"));
const empty = byId("empty");
const detail = byId("detail");
const status = byId("status");
const counts = byId("counts");
const pauseButton = /** @type {HTMLButtonElement} */ (byId("pause"));
const filters = {
  api: /** @type {HTMLSelectElement} */ (byId("filter-api")),
  hook: /** @type {HTMLSelectElement} */ (byId("filter-hook")),
  outcome: /** @type {HTMLSelectElement} */ (byId("filter-outcome")),
};

/** @type {CallSummary[]} the calls listed, oldest first */
let calls = [];
/** @type {CallSummary[]} calls that came while paused */
let held = [];
let capacity = 200;
let paused = false;
let missed = 0;
/** @type {number | undefined} */
let openId;
const maxRows = 500;

/** @param {CallSummary} c */
const hookOf = (c) => `${c.hookType} ${c.hookName}`;

/** @param {string} iso */
function clock(iso) {
  const d = new Date(iso);
  const pad = (/** @type {number} */ n, /** @type {number} */ w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** @param {CallSummary} c */
function shown(c) {
  return (
    (filters.api.value === "" || c.apiId === filters.api.value) &&
    (filters.hook.value === "" || hookOf(c) === filters.hook.value) &&
    (filters.outcome.value === "" || c.outcome === filters.outcome.value)
  );
}

/** @param {CallSummary} c */
function row(c) {
  const tr = el("tr", { "data-id": String(c.id), "data-outcome": c.outcome, tabindex: "0" }, [
    el("td", {}, [clock(c.time)]),
    el("td", {}, [c.apiId]),
    el("td", {}, [c.hookType]),
    el("td", {}, [c.hookName]),
    el("td", {}, [c.plugin ?? "none"]),
    el("td", { class: "request" }, [`${c.method} ${c.url}`]),
    el("td", {}, [el("span", { class: `outcome outcome-${c.outcome}` }, [c.status === null ? c.outcome : `${c.outcome} ${c.status}`])]),
    el("td", { class: "num" }, [c.ms.toFixed(2)]),
  ]);
  if (c.id === openId) tr.classList.add("open");
  tr.addEventListener("click", () => void open(c.id));
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter") void open(c.id);
  });
  return tr;
}

// Options of a filter: every value seen, sorted; the chosen one stays.
/** @param {HTMLSelectElement} select @param {string[]} values */
function fillOptions(select, values) {
  const chosen = select.value;
  const wanted = [...new Set(values)].sort();
  const have = [...select.options].slice(1).map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return;
  select.replaceChildren(el("option", { value: "" }, ["all"]), ...wanted.map((v) => el("option", { value: v }, [v === "" ? "(none)" : v])));
  select.value = wanted.includes(chosen) ? chosen : "";
}

function render() {
  fillOptions(
    filters.api,
    calls.map((c) => c.apiId),
  );
  fillOptions(filters.hook, calls.map(hookOf));
  const visible = calls.filter(shown);
  // Newest first; a table of thousands of rows redrawn ten times a second would stall the page.
  list.replaceChildren(...visible.slice(-maxRows).reverse().map(row));
  empty.hidden = calls.length > 0;
  const parts = [`${visible.length} of ${calls.length} calls`];
  if (visible.length > maxRows) parts.push(`the newest ${maxRows} listed`);
  if (held.length > 0) parts.push(`${held.length} new while paused`);
  if (missed > 0) parts.push(`${missed} not listed: calls came faster than the page takes them`);
  counts.textContent = parts.join(" · ");
}

/** @param {CallSummary[]} batch */
function add(batch) {
  if (paused) {
    held.push(...batch);
    held = held.slice(-capacity);
  } else {
    calls.push(...batch);
    calls = calls.slice(-capacity);
  }
  render();
}

/** @param {string} state @param {string} text */
function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function connect() {
  const events = new EventSource("/inspect/events");
  events.addEventListener("open", () => setStatus(paused ? "paused" : "live", paused ? "paused" : "live"));
  events.addEventListener("error", () => setStatus("down", "reconnecting…"));
  events.addEventListener("hello", (e) => {
    const hello = /** @type {{ capacity: number, masked: boolean, calls: CallSummary[] }} */ (JSON.parse(/** @type {MessageEvent} */ (e).data));
    capacity = hello.capacity;
    calls = hello.calls;
    held = [];
    render();
  });
  events.addEventListener("calls", (e) => add(JSON.parse(/** @type {MessageEvent} */ (e).data)));
  events.addEventListener("dropped", (e) => {
    missed += /** @type {{ calls: number }} */ (JSON.parse(/** @type {MessageEvent} */ (e).data)).calls;
    render();
  });
}

// ---- one call opened ----

/** @param {string[]} path */
const pathKey = (path) => path.join("\u0000");

/**
 * A JSON document as lines, each line of a changed value marked: in the
 * Object received, what the reply removed or changed; in the reply, what it
 * added or changed. A changed array or object is marked whole.
 * @param {unknown} doc @param {Map<string, Change["kind"]>} changes @param {"received" | "reply"} side
 */
function jsonLines(doc, changes, side) {
  const marks = side === "received" ? ["removed", "changed"] : ["added", "changed"];
  /** @type {HTMLElement[]} */
  const lines = [];
  /** @param {string} text @param {string | undefined} mark @param {string[]} path */
  const line = (text, mark, path) => {
    const span = el("span", { class: mark === undefined ? "line" : `line mark-${mark}`, "data-path": path.join(".") }, [text]);
    lines.push(span);
  };
  /** @param {unknown} value @param {string[]} path @param {string} prefix @param {string} indent @param {string} comma @param {string | undefined} inherited */
  const walk = (value, path, prefix, indent, comma, inherited) => {
    const kind = changes.get(pathKey(path));
    const mark = inherited ?? (kind !== undefined && marks.includes(kind) ? kind : undefined);
    if (value !== null && typeof value === "object") {
      const entries = Array.isArray(value) ? value.map((v, i) => /** @type {[string, unknown]} */ ([String(i), v])) : Object.entries(value);
      const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
      if (entries.length === 0) {
        line(`${indent}${prefix}${open}${close}${comma}`, mark, path);
        return;
      }
      line(`${indent}${prefix}${open}`, mark, path);
      entries.forEach(([k, v], i) => {
        const childPrefix = Array.isArray(value) ? "" : `${JSON.stringify(k)}: `;
        walk(v, [...path, k], childPrefix, `${indent}  `, i < entries.length - 1 ? "," : "", mark);
      });
      line(`${indent}${close}${comma}`, mark, path);
      return;
    }
    line(`${indent}${prefix}${JSON.stringify(value)}${comma}`, mark, path);
  };
  walk(doc, [], "", "", "", undefined);
  return lines;
}

/** @param {string} text */
async function copy(text) {
  if (navigator.clipboard !== undefined && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Without a secure context (plain HTTP off loopback) there is no clipboard API.
  const area = el("textarea", {}, [text]);
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

/** @param {Replay} replay */
function replayBox(replay) {
  if ("unavailable" in replay) {
    return el("p", { class: "note" }, [`No replay: ${replay.unavailable}.`]);
  }
  const command = el("pre", { id: "replay-command", class: "command" }, [replay.grpcurl]);
  /** @param {string} label @param {string} text */
  const button = (label, text) => {
    const b = el("button", { type: "button", "data-copy": label }, [`Copy ${label}`]);
    b.addEventListener("click", () => {
      command.textContent = text;
      copy(text).then(
        () => (b.textContent = "Copied"),
        () => (b.textContent = "Copy failed: select the text"),
      );
      setTimeout(() => (b.textContent = `Copy ${label}`), 1500);
    });
    return b;
  };
  return el("div", {}, [
    el("div", { class: "buttons" }, [button("grpcurl", replay.grpcurl), button("pnpm client", replay.client)]),
    ...(replay.warning === null ? [] : [el("p", { class: "note warn" }, [replay.warning])]),
    command,
  ]);
}

/** @param {Record<string, unknown>} line */
function logRow(line) {
  const { level, time, msg, ...fields } = line;
  const levels = /** @type {Record<string, string>} */ ({ 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" });
  const name = levels[String(level)] ?? String(level);
  return el("tr", { class: `log-${name}` }, [
    el("td", {}, [typeof time === "string" ? clock(time) : ""]),
    el("td", {}, [name]),
    el("td", {}, [String(msg ?? "")]),
    el("td", { class: "fields" }, [Object.keys(fields).length > 0 ? JSON.stringify(fields) : ""]),
  ]);
}

/**
 * What the gateway will do to the request received, marked on it: a header
 * or query parameter the reply deletes is marked removed where the request
 * holds it, one the reply sets over an existing value is marked changed.
 * @param {CallDetail} c
 * @returns {Map<string, Change["kind"]>}
 */
function effects(c) {
  /** @type {Map<string, Change["kind"]>} */
  const marks = new Map();
  const request = /** @type {{ request?: Record<string, unknown> } | null} */ (c.reply)?.request;
  const received = /** @type {{ request?: Record<string, unknown> }} */ (c.received).request ?? {};
  /** @param {string} field @param {string[]} names @param {Change["kind"]} kind @param {boolean} ignoreCase */
  const mark = (field, names, kind, ignoreCase) => {
    const held = Object.keys(/** @type {Record<string, string>} */ (received[field] ?? {}));
    for (const name of names) {
      const key = held.find((k) => (ignoreCase ? k.toLowerCase() === name.toLowerCase() : k === name));
      if (key !== undefined) marks.set(pathKey(["request", field, key]), kind);
    }
  };
  if (request !== undefined) {
    mark("headers", /** @type {string[]} */ (request.deleteHeaders ?? []), "removed", true);
    mark("headers", Object.keys(/** @type {Record<string, string>} */ (request.setHeaders ?? {})), "changed", true);
    mark("params", /** @type {string[]} */ (request.deleteParams ?? []), "removed", false);
    mark("params", Object.keys(/** @type {Record<string, string>} */ (request.addParams ?? {})), "changed", false);
  }
  return marks;
}

/** @param {DetailResponse} d */
function showDetail(d) {
  const c = d.call;
  const changes = new Map(c.changes.map((ch) => [pathKey(ch.path), ch.kind]));
  const receivedMarks = new Map([...effects(c), ...changes]);
  const bytes = (/** @type {number} */ n) =>
    n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
  detail.replaceChildren(
    el("div", { class: "detail-head" }, [
      el("h2", {}, [`#${c.id} ${c.hookType} "${c.hookName}"`]),
      el("span", { class: `outcome outcome-${c.outcome}` }, [c.status === null ? c.outcome : `${c.outcome} ${c.status}`]),
      el("span", { class: "meta" }, [
        `API ${c.apiId || "(none)"} · plugin ${c.plugin ?? "none"} · ${c.ms.toFixed(2)} ms · ${clock(c.time)}${c.traceId ? ` · trace ${c.traceId}` : ""}`,
      ]),
      el("button", { type: "button", id: "close-detail" }, ["Close"]),
    ]),
    ...(c.error === null ? [] : [el("p", { class: "error" }, [`The gateway got an error, not a reply: ${c.error}`])]),
    el("h3", {}, ["What the plugin changed"]),
    c.reply === null
      ? el("p", { class: "note" }, ["No reply to compare."])
      : c.notes.length === 0
        ? el("p", { class: "note", id: "no-changes" }, ["Nothing: the reply is the Object as received."])
        : el(
            "ul",
            { id: "changes" },
            c.notes.map((n) => el("li", {}, [n])),
          ),
    ...c.cut.map((cut) => el("p", { class: "note" }, [`${cut.side} ${cut.path.join(".")}: ${bytes(cut.bytes)}, shown cut to its first 16 KiB`])),
    ...(c.masked ? [el("p", { class: "note" }, ["Credentials are masked as in the log (--log-secrets shows them)."])] : []),
    el("div", { class: "sides" }, [
      el("div", {}, [el("h3", {}, ["Received"]), el("pre", { id: "received", class: "json" }, jsonLines(c.received, receivedMarks, "received"))]),
      el("div", {}, [el("h3", {}, ["Reply"]), el("pre", { id: "reply", class: "json" }, c.reply === null ? ["(none)"] : jsonLines(c.reply, changes, "reply"))]),
    ]),
    el("h3", {}, [`Log lines (${d.logs.length}${d.logsDropped > 0 ? `, ${d.logsDropped} more not kept` : ""})`]),
    d.logs.length === 0
      ? el("p", { class: "note" }, ["None at the server's log level while this call ran."])
      : el("table", { id: "logs", class: "logs" }, [el("tbody", {}, d.logs.map(logRow))]),
    el("h3", {}, ["Replay"]),
    replayBox(d.replay),
  );
  byId("close-detail").addEventListener("click", () => {
    openId = undefined;
    detail.hidden = true;
    render();
  });
  detail.hidden = false;
}

/** @param {number} id */
async function open(id) {
  openId = id;
  render();
  const res = await fetch(`/inspect/calls/${id}`);
  if (openId !== id) return;
  if (!res.ok) {
    detail.replaceChildren(el("p", { class: "error" }, [`Call #${id} is no longer kept: the buffer holds the last ${capacity} calls.`]));
    detail.hidden = false;
    return;
  }
  showDetail(await res.json());
}

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  setStatus(paused ? "paused" : "live", paused ? "paused" : "live");
  if (!paused) {
    calls.push(...held);
    calls = calls.slice(-capacity);
    held = [];
  }
  render();
});

byId("clear").addEventListener("click", async () => {
  await fetch("/inspect/clear", { method: "POST", headers: { "x-inspector": "clear" } });
  calls = [];
  held = [];
  missed = 0;
  openId = undefined;
  detail.hidden = true;
  render();
});

for (const select of Object.values(filters)) select.addEventListener("change", render);

render();
connect();
