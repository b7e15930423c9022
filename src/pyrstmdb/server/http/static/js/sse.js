// Server-Sent Events over fetch(), so the stream carries the Authorization header
// (EventSource cannot send headers). Reconnects with Last-Event-ID, which the
// server resumes from without gaps.
import { askToken, authHeaders, unauthorizedReason } from "./api.js";

const RETRY_MS = 1000;

/**
 * openStream(path, {onEvent(type, data, id), onStatus(status, detail)}) -> {close()}
 * status: "connecting" | "open" | "retrying" | "closed" | "error".
 * With {raw: true} the data is passed as text (the caller parses what it uses).
 * busyMs() is the main-thread time spent reading, parsing and dispatching so far.
 */
export function openStream(path, handlers) {
  const controller = new AbortController();
  const state = { lastId: null, closed: false, busy: 0 };
  run(path, handlers, controller, state);
  return {
    busyMs: () => state.busy,
    close() {
      state.closed = true;
      controller.abort();
      handlers.onStatus?.("closed");
    },
  };
}

async function run(path, handlers, controller, state) {
  while (!state.closed) {
    handlers.onStatus?.("connecting");
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (state.lastId !== null) headers["Last-Event-ID"] = state.lastId;
      const resp = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
      if (resp.status === 401) {
        let code = "UNAUTHORIZED";
        try {
          code = (await resp.json()).error.code;
        } catch {
          /* keep the default */
        }
        await askToken(unauthorizedReason(code));
        continue;
      }
      if (!resp.ok) {
        let message = `HTTP ${resp.status}`;
        try {
          message = (await resp.json()).error.message;
        } catch {
          /* keep the status */
        }
        handlers.onStatus?.("error", message);
        if (resp.status >= 400 && resp.status < 500) return;
      } else {
        handlers.onStatus?.("open");
        await consume(resp.body, handlers, state);
      }
    } catch (err) {
      if (state.closed) return;
      handlers.onStatus?.("retrying", err.message);
    }
    if (!state.closed) await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

async function consume(body, handlers, state) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = { type: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const t0 = performance.now();
    buffer += decoder.decode(value, { stream: true });
    let start = 0;
    for (;;) {
      const nl = buffer.indexOf("\n", start);
      if (nl < 0) break;
      let line = buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (event.data.length) {
          if (event.id !== null) state.lastId = event.id;
          dispatch(handlers, event);
        }
        event = { type: "message", data: [], id: null };
      } else if (line[0] !== ":") {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "data") event.data.push(value);
        else if (field === "event") event.type = value;
        else if (field === "id") event.id = value;
      }
    }
    buffer = buffer.slice(start);
    state.busy += performance.now() - t0;
  }
}

function dispatch(handlers, event) {
  let data = event.data.length === 1 ? event.data[0] : event.data.join("\n");
  if (handlers.raw) return handlers.onEvent(event.type, data, event.id);
  try {
    data = JSON.parse(data);
  } catch {
    /* not JSON: pass the text */
  }
  handlers.onEvent(event.type, data, event.id);
}
