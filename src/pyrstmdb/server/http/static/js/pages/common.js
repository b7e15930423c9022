// Pieces several pages share: the machine list, definitions, diagrams.
import { get } from "../api.js";
import { drawDiagram } from "../diagram.js";
import { enc, h } from "../dom.js";

export async function machineList() {
  return (await get("/v1/machines")).items;
}

export function machinePath(name, version) {
  return `/v1/machines/${enc(name)}/versions/${version}`;
}

export async function loadDiagram(name, version, options) {
  const layout = await get(`/v1/console/machines/${enc(name)}/versions/${version}/layout`);
  return { layout, diagram: drawDiagram(layout, options) };
}

/** Events allowed from a state: one entry per event, in definition order. */
export function allowedEvents(definition, state) {
  const seen = new Map();
  for (const t of definition.transitions) {
    if (!t.from.includes(state)) continue;
    if (!seen.has(t.event)) seen.set(t.event, { event: t.event, targets: [], guards: [] });
    const entry = seen.get(t.event);
    entry.targets.push(t.to);
    if (t.guard) entry.guards.push(t.guard);
  }
  return [...seen.values()];
}

export function pageHeader(title, subtitle, ...actions) {
  return h(
    "header.page-head",
    h("div", h("h1", title), subtitle ? h("p.sub", subtitle) : null),
    h("div.head-actions", ...actions),
  );
}

export function card(title, ...body) {
  return h("section.card", title ? h("h2", title) : null, ...body);
}

export function statePill(state) {
  return h("span.pill.state", state);
}

export function liveDot(label = "live") {
  const dot = h("span.live", { title: "live updates" }, h("i"), h("span", label));
  return {
    el: dot,
    set(status, detail) {
      dot.dataset.status = status;
      dot.title = detail || status;
      dot.querySelector("span").textContent =
        status === "open" ? label : status === "closed" ? "stopped" : status;
    },
  };
}

/**
 * A function that runs `fn` on an animation frame, at most once every `ms`,
 * however often it is called (live streams can bring thousands of updates a second).
 */
export function throttled(fn, ms = 250) {
  let last = 0;
  let timer = 0;
  let frame = 0;
  const run = () => {
    frame = 0;
    last = performance.now();
    fn();
  };
  const call = () => {
    if (timer || frame) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(() => {
      timer = 0;
      frame = requestAnimationFrame(run);
    }, wait);
  };
  call.cancel = () => {
    clearTimeout(timer);
    cancelAnimationFrame(frame);
    timer = frame = 0;
  };
  return call;
}
