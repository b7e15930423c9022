// Live events: a tail of WATCH_ALL. Incoming events are buffered and drawn in one
// batch per animation frame, at most every DRAW_INTERVAL_MS (repainting the table
// more often costs the browser more than a reader gains); when more arrive than a
// batch shows, only the newest are drawn (the page says so) and the table keeps a
// bounded number of rows.
import { query } from "../api.js";
import { enc, h } from "../dom.js";
import { openStream } from "../sse.js";
import { card, liveDot, pageHeader } from "./common.js";

const MAX_ROWS = 200;
const ROWS_PER_FRAME = 25;
const DRAW_INTERVAL_MS = 250;
const FIELDS = [
  ["machines", "Machines"],
  ["instances", "Instances"],
  ["from_states", "From states"],
  ["to_states", "To states"],
  ["events", "Events"],
];

export async function render(view, params) {
  const inputs = Object.fromEntries(
    FIELDS.map(([key, label]) => [key, h(`input#f-${key}`, { value: params[key] || "", placeholder: "any", spellcheck: "false", "aria-label": label })]),
  );
  const includeCtx = h("input#f-ctx", { type: "checkbox", checked: params.include_ctx === "true" });
  const pause = h("button#pause", { type: "button" }, "Pause");
  const clearButton = h("button#clear", { type: "button" }, "Clear");
  const live = liveDot();
  const stats = {
    total: h("span#stat-total", "0"),
    rate: h("span#stat-rate", "0"),
    shown: h("span#stat-shown", "0"),
    mode: h("span#stat-mode", "showing every event"),
  };
  const tbody = h("tbody#tail");

  // Events stay unparsed text until drawn: most are only counted.
  const state = { buffer: [], total: 0, windowCount: 0, dropped: 0, paused: false, frame: 0, stream: null, drawMs: 0, lastDraw: 0, timer: 0 };
  const rates = [];

  const draw = () => {
    state.frame = 0;
    state.lastDraw = performance.now();
    if (state.paused) {
      state.buffer.length = 0;
      return;
    }
    const t0 = performance.now();
    const batch = state.buffer;
    state.buffer = [];
    const shown = batch.length > ROWS_PER_FRAME ? batch.slice(-ROWS_PER_FRAME) : batch;
    state.dropped += batch.length - shown.length;
    const fragment = document.createDocumentFragment();
    for (let i = shown.length - 1; i >= 0; i -= 1) fragment.append(row(JSON.parse(shown[i]), includeCtx.checked));
    tbody.prepend(fragment);
    let extra = tbody.childElementCount - MAX_ROWS;
    while (extra-- > 0) tbody.lastElementChild.remove();
    stats.shown.textContent = tbody.childElementCount.toLocaleString();
    state.drawMs += performance.now() - t0;
  };

  const onEvent = (type, data) => {
    if (type === "notice") {
      let notice = { message: data };
      try {
        notice = JSON.parse(data);
      } catch {
        /* show the text */
      }
      state.buffer.push(JSON.stringify({ notice: true, ...notice }));
    } else if (type === "transition") {
      state.total += 1;
      state.windowCount += 1;
      state.buffer.push(data);
    } else {
      return;
    }
    if (state.buffer.length > ROWS_PER_FRAME * 4) state.buffer.splice(0, state.buffer.length - ROWS_PER_FRAME);
    if (!state.frame && !state.timer) {
      const wait = Math.max(0, state.lastDraw + DRAW_INTERVAL_MS - performance.now());
      state.timer = setTimeout(() => {
        state.timer = 0;
        state.frame = requestAnimationFrame(draw);
      }, wait);
    }
  };

  const tick = setInterval(() => {
    rates.push(state.windowCount);
    state.windowCount = 0;
    if (rates.length > 3) rates.shift();
    const rate = Math.round(rates.reduce((a, b) => a + b, 0) / rates.length);
    stats.total.textContent = state.total.toLocaleString();
    stats.rate.textContent = rate.toLocaleString();
    const sampling = state.dropped > 0;
    stats.mode.textContent = state.paused
      ? "paused: events are counted, not shown"
      : sampling
        ? `sampling: the newest ${ROWS_PER_FRAME} events are drawn every ${DRAW_INTERVAL_MS} ms (${state.dropped.toLocaleString()} not drawn in the last second; all are counted)`
        : "showing every event";
    const display = stats.mode.parentElement;
    display.classList.toggle("sampling", sampling || state.paused);
    // Main-thread time this page spent on the stream and the table, for diagnostics.
    display.dataset.busyMs = Math.round(state.drawMs + (state.stream ? state.stream.busyMs() : 0));
    state.dropped = 0;
  }, 1000);

  const connect = () => {
    state.stream?.close();
    const filters = {};
    for (const [key] of FIELDS) filters[key] = inputs[key].value.replace(/\s+/g, "");
    filters.include_ctx = includeCtx.checked ? "true" : "false";
    history.replaceState(null, "", `#/events${query(filters)}`);
    state.stream = openStream(`/v1/events${query(filters)}`, { raw: true, onEvent, onStatus: live.set });
  };

  pause.addEventListener("click", () => {
    state.paused = !state.paused;
    pause.textContent = state.paused ? "Resume" : "Pause";
    pause.classList.toggle("primary", state.paused);
  });
  clearButton.addEventListener("click", () => {
    tbody.replaceChildren();
    stats.shown.textContent = "0";
  });

  const form = h(
    "form.filters.tail-filters",
    { on: { submit: (e) => (e.preventDefault(), connect()) } },
    FIELDS.map(([key, label]) => h("label", label, inputs[key])),
    h("label.check", includeCtx, "Include ctx"),
    h("button.primary", { type: "submit" }, "Apply"),
  );
  view.append(
    pageHeader(h("span", "Live events ", live.el), "Every transition as it commits (comma-separated filters)", pause, clearButton),
    card(null, form),
    h(
      "div.stats",
      h("div.stat", h("span.stat-label", "Received"), stats.total),
      h("div.stat", h("span.stat-label", "Events / s"), stats.rate),
      h("div.stat", h("span.stat-label", "Rows shown"), stats.shown, h("span.stat-sub", ` (max ${MAX_ROWS})`)),
      h("div.stat.wide#display-mode", h("span.stat-label", "Display"), stats.mode),
    ),
    card(
      null,
      h(
        "div.tail-scroll",
        h(
        "table.table.tail",
        h("thead", h("tr", h("th.num", "WAL offset"), h("th", "Instance"), h("th", "Machine"), h("th", "Event"), h("th", "Transition"), h("th", "Payload"))),
        tbody,
        ),
      ),
    ),
  );
  connect();
  return () => {
    state.stream?.close();
    clearInterval(tick);
    if (state.frame) cancelAnimationFrame(state.frame);
    clearTimeout(state.timer);
  };
}

function row(e, withCtx) {
  if (e.notice) return h("tr.notice", h("td", { colspan: 6 }, `${e.code || "notice"}: ${e.message || JSON.stringify(e)}`));
  const tr = document.createElement("tr");
  const cells = [
    String(e.wal_offset),
    null,
    `${e.machine} v${e.version}`,
    e.event,
    `${e.from_state} → ${e.to_state}`,
    e.payload ? JSON.stringify(withCtx && e.ctx ? { payload: e.payload, ctx: e.ctx } : e.payload) : withCtx && e.ctx ? JSON.stringify({ ctx: e.ctx }) : "",
  ];
  for (let i = 0; i < cells.length; i += 1) {
    const td = document.createElement("td");
    if (i === 1) td.append(h("a.mono", { href: `#/instances/${enc(e.instance_id)}` }, e.instance_id));
    else td.textContent = cells[i];
    if (i === 0) td.className = "num mono";
    if (i === 5) td.className = "mono payload";
    tr.append(td);
  }
  return tr;
}
