// Instances: filter by machine, version and state, paginated; create one.
import { get, post, query } from "../api.js";
import { go } from "../app.js";
import { empty, enc, errorBox, fmtAgo, fmtTime, h, parseJson } from "../dom.js";
import { card, machineList, machinePath, pageHeader, statePill } from "./common.js";

const PAGE = 25;

function select(id, options, value, placeholder) {
  return h(
    `select#${id}`,
    h("option", { value: "" }, placeholder),
    options.map((o) => h("option", { value: String(o), selected: String(o) === String(value) }, String(o))),
  );
}

export async function render(view, params) {
  const machines = await machineList();
  const filters = { machine: params.machine || "", version: params.version || "", state: params.state || "" };
  const offset = Number(params.offset || 0);
  const current = machines.find((m) => m.machine === filters.machine);
  const versions = current ? current.versions : [];
  let states = [];
  if (current) {
    const v = filters.version !== "" ? Number(filters.version) : versions[versions.length - 1];
    states = [...new Set((await get(machinePath(current.machine, v))).definition.states)];
  }

  const fMachine = select("filter-machine", machines.map((m) => m.machine), filters.machine, "All machines");
  const fVersion = select("filter-version", versions, filters.version, "All versions");
  const fState = select("filter-state", states, filters.state, "All states");
  const apply = (changes) => go("/instances", { ...filters, ...changes, offset: 0 });
  fMachine.addEventListener("change", () => apply({ machine: fMachine.value, version: "", state: "" }));
  fVersion.addEventListener("change", () => apply({ version: fVersion.value, state: "" }));
  fState.addEventListener("change", () => apply({ state: fState.value }));

  const page = await get(`/v1/console/instances${query({ ...filters, limit: PAGE, offset })}`);
  const createCard = createForm(machines, filters, params.create === "1");
  const newButton = h("button.primary#show-create", { on: { click: () => createCard.toggle(true) } }, "Create instance");

  const rows = page.instances.map((i) =>
    h(
      "tr",
      { dataset: { id: i.id } },
      h("td", h("a.mono", { href: `#/instances/${enc(i.id)}` }, i.id)),
      h("td", h("a", { href: `#/machines/${enc(i.machine)}/${i.version}` }, `${i.machine} v${i.version}`)),
      h("td", statePill(i.state)),
      h("td", { title: fmtTime(i.updated_at) }, fmtAgo(i.updated_at)),
      h("td.num.mono", String(i.last_wal_offset)),
    ),
  );
  const first = page.total ? offset + 1 : 0;
  const last = offset + page.instances.length;
  const pager = h(
    "div.pager",
    h("span#page-info", `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}`),
    h("button#page-prev", { disabled: offset === 0, on: { click: () => go("/instances", { ...filters, offset: Math.max(0, offset - PAGE) }) } }, "← Previous"),
    h("button#page-next", { disabled: !page.has_more, on: { click: () => go("/instances", { ...filters, offset: offset + PAGE }) } }, "Next →"),
  );
  view.append(
    pageHeader("Instances", "Newest changes first", newButton),
    createCard.el,
    card(
      null,
      h("div.filters", fMachine, fVersion, fState, h("a.button.ghost", { href: "#/instances" }, "Clear filters")),
      page.instances.length
        ? h(
            "table.table#instances-table",
            h("thead", h("tr", h("th", "Instance"), h("th", "Machine"), h("th", "State"), h("th", "Updated"), h("th.num", "WAL offset"))),
            h("tbody", rows),
          )
        : empty("No instances match these filters."),
      pager,
    ),
  );
}

function createForm(machines, filters, open) {
  const machine = select("create-machine", machines.map((m) => m.machine), filters.machine, "Choose a machine");
  const version = h("select#create-version");
  const fillVersions = () => {
    const m = machines.find((x) => x.machine === machine.value);
    const vs = m ? [...m.versions].reverse() : [];
    version.replaceChildren(...vs.map((v) => h("option", { value: String(v), selected: String(v) === filters.version }, `v${v}`)));
  };
  machine.addEventListener("change", fillVersions);
  fillVersions();
  const id = h("input#create-id", { placeholder: "generated when empty", spellcheck: "false" });
  const ctx = h("textarea#create-ctx.code", { rows: 4, spellcheck: "false" }, "{}");
  const problems = h("div#create-errors");
  const submit = h("button.primary#create-submit", { type: "submit" }, "Create");
  const onSubmit = async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    const parsed = parseJson(ctx.value, { allowEmpty: true });
    if (parsed.error) return problems.append(errorBox({ code: "BAD_REQUEST", message: parsed.error }));
    if (!machine.value) return problems.append(errorBox({ code: "BAD_REQUEST", message: "Choose a machine." }));
    const body = { machine: machine.value, version: Number(version.value) };
    if (id.value.trim()) body.instance_id = id.value.trim();
    if (parsed.value !== undefined) body.initial_ctx = parsed.value;
    submit.disabled = true;
    try {
      const created = await post("/v1/instances", body);
      go(`/instances/${encodeURIComponent(created.instance_id)}`);
    } catch (err) {
      problems.append(errorBox(err));
      submit.disabled = false;
    }
  };
  const el = card(
    "Create instance",
    h(
      "form.create-form",
      { on: { submit: onSubmit } },
      h("div.form-row", h("label", "Machine", machine), h("label.narrow", "Version", version), h("label", "Instance id", id)),
      h("label.block", "Initial context (JSON object)", ctx),
      problems,
      h("div.actions", h("button", { type: "button", on: { click: () => toggle(false) } }, "Cancel"), submit),
    ),
  );
  el.id = "create-card";
  const toggle = (show) => {
    el.hidden = !show;
    if (show) machine.focus();
  };
  toggle(open);
  return { el, toggle };
}
