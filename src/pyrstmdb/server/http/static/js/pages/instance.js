// One instance: its state on the diagram, ctx, history, and the events it accepts.
import { get, post, query } from "../api.js";
import { empty, enc, errorBox, fmtTime, h, jsonBlock, parseJson } from "../dom.js";
import { openStream } from "../sse.js";
import {
  allowedEvents,
  card,
  liveDot,
  loadDiagram,
  machinePath,
  pageHeader,
  statePill,
  throttled,
} from "./common.js";

const HISTORY_LIMIT = 100;

export async function render(view, _params, id) {
  const path = `/v1/instances/${enc(id)}`;
  const inst = await get(path);
  const [machine, { diagram }] = await Promise.all([
    get(machinePath(inst.machine, inst.version)),
    loadDiagram(inst.machine, inst.version),
  ]);
  const model = { state: inst.state, ctx: inst.ctx, offset: inst.last_wal_offset, deleted: false };

  const stateEl = h("span#current-state");
  const ctxCard = h("div#ctx");
  const buttons = h("div.event-buttons#event-buttons");
  const payload = h("textarea#event-payload.code", { rows: 3, spellcheck: "false", placeholder: '{"amount": 10}' });
  const outcome = h("div#apply-result");
  const payloadField = h("label.block", "Payload (optional JSON object)", payload);
  const timeline = h("ol.timeline#history");
  const historyNote = h("p.hint#history-note");
  const live = liveDot();

  const showState = () => {
    stateEl.replaceChildren(statePill(model.state));
    const allowed = model.deleted ? [] : allowedEvents(machine.definition, model.state);
    diagram.highlight(model.state, new Set(allowed.map((a) => a.event)));
    buttons.replaceChildren(
      ...(allowed.length
        ? allowed.map((a) => eventButton(a))
        : [empty(model.deleted ? "This instance was deleted." : `No transitions leave “${model.state}”: it is final.`)]),
    );
    payloadField.hidden = allowed.length === 0;
    ctxCard.replaceChildren(jsonBlock(model.ctx));
  };

  const eventButton = (a) =>
    h(
      "button.event",
      {
        type: "button",
        dataset: { event: a.event },
        title: a.guards.length ? `guard: ${a.guards.join(" / ")}` : `→ ${a.targets.join(" / ")}`,
        on: { click: () => apply(a.event) },
      },
      h("span.event-name", a.event),
      h("span.event-target", `→ ${[...new Set(a.targets)].join(" | ")}`),
      a.guards.length ? h("span.event-guard", `[${a.guards.join("] [")}]`) : null,
    );

  const apply = async (event) => {
    outcome.replaceChildren();
    const parsed = parseJson(payload.value, { allowEmpty: true });
    if (parsed.error) return outcome.append(errorBox({ code: "BAD_REQUEST", message: parsed.error }));
    const body = { event, expected_state: model.state };
    if (parsed.value !== undefined) body.payload = parsed.value;
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      const result = await post(`${path}/events`, body);
      if (result.wal_offset > model.offset) {
        Object.assign(model, { state: result.to_state, ctx: result.ctx ?? model.ctx, offset: result.wal_offset });
      }
      diagram.flash(event, result.from_state);
      outcome.append(h("div.alert.ok", `${event}: ${result.from_state} → ${result.to_state}`));
      showState();
      loadHistory();
    } catch (err) {
      outcome.append(errorBox(err));
      if (err.code === "CONFLICT") refresh();
      else showState();
    }
  };

  const refresh = async () => {
    try {
      const now = await get(path);
      Object.assign(model, { state: now.state, ctx: now.ctx, offset: now.last_wal_offset });
    } catch (err) {
      if (err.code !== "INSTANCE_NOT_FOUND") throw err;
      model.deleted = true;
    }
    showState();
    loadHistory();
  };

  let historyBusy = false;
  let historyAgain = false;
  const loadHistory = async () => {
    if (historyBusy) {
      historyAgain = true;
      return;
    }
    historyBusy = true;
    try {
      const hist = await get(`${path}/history${query({ limit: HISTORY_LIMIT })}`);
      timeline.replaceChildren(...hist.entries.slice().reverse().map(historyItem));
      historyNote.textContent = hist.truncated ? "Older entries are no longer kept." : "";
    } catch (err) {
      timeline.replaceChildren(errorBox(err));
    } finally {
      historyBusy = false;
      if (historyAgain) {
        historyAgain = false;
        loadHistory();
      }
    }
  };

  let lastLive = null;
  const showLive = throttled(() => {
    if (lastLive) diagram.flash(lastLive.event, lastLive.from_state);
    showState();
    loadHistory();
  });

  const stream = openStream(`${path}/events/stream${query({ include_ctx: true })}`, {
    onEvent(type, data) {
      if (type === "notice") {
        outcome.replaceChildren(h("div.alert.info", data.message || data.code || JSON.stringify(data)));
        refresh();
        return;
      }
      if (type !== "transition" || data.wal_offset <= model.offset) return;
      // A change made elsewhere: an earlier "applied" note no longer describes the state.
      if (outcome.querySelector(".alert.ok")) outcome.replaceChildren();
      Object.assign(model, { state: data.to_state, offset: data.wal_offset });
      if (data.ctx) model.ctx = data.ctx;
      lastLive = data;
      showLive();
    },
    onStatus: live.set,
  });

  view.append(
    pageHeader(
      h("span", h("span.kicker", "Instance"), h("span.mono", id)),
      h("span", h("a", { href: `#/machines/${enc(inst.machine)}/${inst.version}` }, `${inst.machine} v${inst.version}`), " · state ", stateEl, " ", live.el),
    ),
    h(
      "div.grid-2-1",
      card("State diagram", h("div.diagram-wrap#instance-diagram", diagram.svg)),
      h(
        "div.stack",
        card(
          "Apply an event",
          buttons,
          payloadField,
          outcome,
        ),
        card("Context", ctxCard),
      ),
    ),
    card("History", historyNote, timeline),
  );
  showState();
  loadHistory();
  return () => {
    stream.close();
    showLive.cancel();
  };
}

function historyItem(e) {
  const title =
    e.kind === "event"
      ? h("span", h("strong", e.event), " ", h("span.mono", e.from_state), " → ", h("span.mono", e.to_state))
      : e.kind === "created"
        ? h("span", h("strong", "created"), " in ", h("span.mono", e.to_state || ""))
        : h("span", h("strong", "deleted"));
  return h(
    `li.${e.kind}`,
    { dataset: { offset: e.wal_offset } },
    h("div.tl-head", title, h("span.tl-meta", e.ts ? fmtTime(e.ts) : "", ` · offset ${e.wal_offset}`)),
    e.payload ? jsonBlock(e.payload, "small") : null,
    e.event_id ? h("div.tl-meta", `event id ${e.event_id}`) : null,
  );
}
