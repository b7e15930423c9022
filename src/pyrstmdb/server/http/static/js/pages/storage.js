// Storage: WAL statistics (refreshed every few seconds) and compaction.
import { get, post } from "../api.js";
import { errorBox, fmtBytes, fmtNum, h, jsonBlock } from "../dom.js";
import { card, pageHeader } from "./common.js";

const REFRESH_MS = 2000;

export async function render(view) {
  const grid = h("div.stats#wal-stats");
  const io = h("div.stats#io-stats");
  const updated = h("span.hint");
  const paint = (s) => {
    grid.replaceChildren(
      stat("Entries", fmtNum(s.entry_count), "entry_count"),
      stat("Segments", fmtNum(s.segment_count), "segment_count"),
      stat("Size on disk", fmtBytes(s.total_size_bytes), "total_size_bytes"),
      stat("Latest offset", String(s.latest_offset ?? "—"), "latest_offset", true),
    );
    const i = s.io_stats;
    io.replaceChildren(
      stat("fsyncs", fmtNum(i.fsyncs), "fsyncs"),
      stat("Writes", fmtNum(i.writes), "writes"),
      stat("Bytes written", fmtBytes(i.bytes_written), "bytes_written"),
      stat("Reads", fmtNum(i.reads), "reads"),
      stat("Bytes read", fmtBytes(i.bytes_read), "bytes_read"),
    );
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  paint(await get("/v1/wal/stats"));
  const timer = setInterval(async () => {
    try {
      paint(await get("/v1/wal/stats"));
    } catch {
      /* keep the last figures */
    }
  }, REFRESH_MS);

  const force = h("input#force-snapshot", { type: "checkbox" });
  const result = h("div#compact-result");
  const button = h("button.primary#compact", { type: "button" }, "Compact now");
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.replaceChildren(h("p.hint", "Compacting…"));
    try {
      const r = await post("/v1/admin/compact", { force_snapshot: force.checked });
      result.replaceChildren(
        h("div.alert.ok", `Compaction done: ${r.segments_deleted} segment(s) deleted, ${fmtBytes(r.bytes_reclaimed)} reclaimed.`),
        jsonBlock(r, "small"),
      );
      paint(await get("/v1/wal/stats"));
    } catch (err) {
      result.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  view.append(
    pageHeader("Storage", "Write-ahead log", updated),
    card("Write-ahead log", grid),
    card("I/O since start", io),
    card(
      "Compaction",
      h("p", "Writes a snapshot of the current state and deletes log segments it covers."),
      h("div.actions.left", button, h("label.check", force, "Force a new snapshot")),
      result,
    ),
  );
  return () => clearInterval(timer);
}

function stat(label, value, key, code = false) {
  const shown = h(code ? "span.stat-value.mono" : "span.stat-value", value);
  return h("div.stat", { dataset: { key } }, h("span.stat-label", label), shown);
}
