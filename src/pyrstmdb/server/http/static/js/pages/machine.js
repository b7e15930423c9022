// One machine version: diagram with live per-state counts, definition, checksum.
import { get, query } from "../api.js";
import { go } from "../app.js";
import { enc, h, jsonBlock } from "../dom.js";
import { openStream } from "../sse.js";
import { card, liveDot, loadDiagram, machineList, machinePath, pageHeader, throttled } from "./common.js";

const RESYNC_MS = 400;
const POLL_MS = 5000;

export async function render(view, _params, name, versionText) {
  const version = Number(versionText);
  const [machine, machines, countsNow] = await Promise.all([
    get(machinePath(name, version)),
    machineList(),
    get(`/v1/console/machines/${enc(name)}/versions/${version}/counts`),
  ]);
  const versions = (machines.find((m) => m.machine === name) || { versions: [version] }).versions;
  const { diagram } = await loadDiagram(name, version, {
    onState: (state) => go("/instances", { machine: name, version, state }),
  });
  let counts = countsNow.states;
  diagram.setCounts(counts);

  const total = h("span#instance-total", String(countsNow.total));
  const countRows = h("tbody#state-counts");
  const renderCounts = () => {
    countRows.replaceChildren(
      ...machine.definition.states
        .filter((s, i, all) => all.indexOf(s) === i)
        .map((state) =>
          h(
            "tr",
            { dataset: { state } },
            h("td", h("a", { href: `#/instances${query({ machine: name, version, state })}` }, state)),
            h("td.num", (counts[state] || 0).toLocaleString()),
          ),
        ),
    );
    total.textContent = Object.values(counts).reduce((a, b) => a + b, 0).toLocaleString();
    diagram.setCounts(counts);
  };
  renderCounts();
  const flashes = new Map();
  const paint = throttled(() => {
    renderCounts();
    for (const [event, from] of flashes) diagram.flash(event, from);
    flashes.clear();
  });

  let timer = null;
  const resync = () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        counts = (await get(`/v1/console/machines/${enc(name)}/versions/${version}/counts`)).states;
        renderCounts();
      } catch {
        /* the next event or poll tries again */
      }
    }, RESYNC_MS);
  };
  const live = liveDot();
  const stream = openStream(`/v1/events${query({ machines: name, include_ctx: false })}`, {
    onEvent(type, data) {
      if (type !== "transition" || data.version !== version) return;
      counts[data.from_state] = Math.max(0, (counts[data.from_state] || 0) - 1);
      counts[data.to_state] = (counts[data.to_state] || 0) + 1;
      flashes.set(data.event, data.from_state);
      paint();
      resync();
    },
    onStatus: live.set,
  });
  const poll = setInterval(resync, POLL_MS);

  const versionChips = h(
    "div.chips",
    versions.map((v) =>
      h(`a.chip${v === version ? ".active" : ""}`, { href: `#/machines/${enc(name)}/${v}` }, `v${v}`),
    ),
  );
  view.append(
    pageHeader(
      h("span", name, h("span.version", `v${version}`)),
      versions.length > 1 ? versionChips : "Machine version",
      h("a.button", { href: `#/machines/new?machine=${enc(name)}` }, "New version"),
      h("a.button.primary", { href: `#/instances${query({ machine: name, version, create: 1 })}` }, "Create instance"),
    ),
    h(
      "div.grid-2-1",
      card(
        h("span.card-title", "State diagram", live.el),
        h("div.diagram-wrap#machine-diagram", diagram.svg),
        h("p.hint", "Badges count live instances per state; click a state to list them."),
      ),
      h(
        "div.stack",
        card(
          "Instances by state",
          h("table.table.compact", h("thead", h("tr", h("th", "State"), h("th.num", "Instances"))), countRows, h("tfoot", h("tr", h("th", "Total"), h("th.num", total)))),
        ),
        card("Checksum", h("code.checksum#machine-checksum", machine.checksum)),
      ),
    ),
    card("Definition", jsonBlock(machine.definition, "definition")),
  );
  return () => {
    stream.close();
    paint.cancel();
    clearInterval(poll);
    clearTimeout(timer);
  };
}
