// Machines: every machine and its versions.
import { go } from "../app.js";
import { empty, enc, h } from "../dom.js";
import { card, machineList, pageHeader } from "./common.js";

export async function render(view) {
  const items = await machineList();
  const newButton = h("button.primary", { on: { click: () => go("/machines/new") } }, "New machine");
  view.append(pageHeader("Machines", `${items.length} machine${items.length === 1 ? "" : "s"}`, newButton));
  if (!items.length) {
    view.append(card(null, empty("No machines yet. Create one to get started.")));
    return;
  }
  const rows = items.map(({ machine, versions }) => {
    const latest = versions[versions.length - 1];
    return h(
      "tr",
      h("td", h("a.strong", { href: `#/machines/${enc(machine)}/${latest}` }, machine)),
      h(
        "td",
        h(
          "div.chips",
          versions.map((v) => h("a.chip", { href: `#/machines/${enc(machine)}/${v}` }, `v${v}`)),
        ),
      ),
      h(
        "td.actions",
        h("a.button", { href: `#/instances?machine=${enc(machine)}` }, "Instances"),
        h("a.button", { href: `#/machines/new?machine=${enc(machine)}` }, "New version"),
      ),
    );
  });
  view.append(
    card(
      null,
      h(
        "table.table#machines-table",
        h("thead", h("tr", h("th", "Machine"), h("th", "Versions"), h("th"))),
        h("tbody", rows),
      ),
    ),
  );
}
