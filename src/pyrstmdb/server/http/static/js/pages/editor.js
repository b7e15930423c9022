// New machine version: a JSON editor; problems are shown inline, from the
// browser (JSON syntax) and from the server (definition validation).
import { get, put } from "../api.js";
import { go } from "../app.js";
import { errorBox, h, json, parseJson } from "../dom.js";
import { card, machineList, machinePath, pageHeader } from "./common.js";

const EXAMPLE = {
  states: ["created", "paid", "shipped", "delivered", "cancelled"],
  initial: "created",
  transitions: [
    { from: "created", event: "PAY", to: "paid", guard: "ctx.amount > 0" },
    { from: "paid", event: "SHIP", to: "shipped" },
    { from: "shipped", event: "DELIVER", to: "delivered" },
    { from: ["created", "paid"], event: "CANCEL", to: "cancelled" },
  ],
};

export async function render(view, params) {
  const machines = await machineList();
  const existing = machines.find((m) => m.machine === params.machine);
  let start = EXAMPLE;
  let nextVersion = 1;
  if (existing) {
    const latest = existing.versions[existing.versions.length - 1];
    start = (await get(machinePath(existing.machine, latest))).definition;
    nextVersion = latest + 1;
  }
  const name = h("input#machine-name", {
    value: params.machine || "",
    placeholder: "order",
    required: true,
    spellcheck: "false",
  });
  const version = h("input#machine-version", { type: "number", min: 0, value: String(nextVersion) });
  const editor = h("textarea#definition-editor.code", { spellcheck: "false", rows: 22 }, json(start));
  const status = h("div#editor-status.editor-status");
  const problems = h("div#editor-errors");
  const submit = h("button.primary#create-machine", { type: "submit" }, "Create version");

  const check = () => {
    const parsed = parseJson(editor.value);
    editor.classList.toggle("invalid", Boolean(parsed.error));
    status.className = `editor-status ${parsed.error ? "bad" : "ok"}`;
    status.textContent = parsed.error || "Valid JSON";
    return parsed;
  };
  editor.addEventListener("input", check);
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Tab") {
      e.preventDefault();
      editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
    }
  });
  name.addEventListener("input", () => {
    const m = machines.find((x) => x.machine === name.value.trim());
    version.value = String(m ? m.versions[m.versions.length - 1] + 1 : 1);
  });

  const onSubmit = async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    const parsed = check();
    const machine = name.value.trim();
    if (!machine) {
      problems.append(errorBox({ code: "BAD_REQUEST", message: "Give the machine a name." }));
      return;
    }
    if (parsed.error) {
      problems.append(errorBox({ code: "BAD_REQUEST", message: parsed.error }));
      return;
    }
    submit.disabled = true;
    try {
      await put(machinePath(machine, Number(version.value)), parsed.value);
      go(`/machines/${encodeURIComponent(machine)}/${Number(version.value)}`);
    } catch (err) {
      problems.append(errorBox(err));
      submit.disabled = false;
    }
  };

  const form = h(
    "form.editor",
    { on: { submit: onSubmit } },
    h(
      "div.form-row",
      h("label", "Machine", name),
      h("label.narrow", "Version", version),
      h("datalist#machine-names", machines.map((m) => h("option", { value: m.machine }))),
    ),
    h("label.block", "Definition (JSON)", editor),
    status,
    problems,
    h("div.actions", h("a.button", { href: "#/machines" }, "Cancel"), submit),
  );
  name.setAttribute("list", "machine-names");
  const help = card(
    "Definition format",
    h("p", "A definition lists its ", h("code", "states"), ", the ", h("code", "initial"), " state and its ", h("code", "transitions"), "."),
    h("p", "Each transition has ", h("code", "from"), " (a state or a list of states), an ", h("code", "event"), ", a target ", h("code", "to"), " and an optional ", h("code", "guard"), " such as ", h("code", "ctx.amount > 0 && !ctx.blocked"), "."),
    h("p", "Versions are immutable: publish a new version to change a machine; existing instances keep theirs."),
  );
  view.append(
    pageHeader(existing ? `New version of ${existing.machine}` : "New machine", "Publish a machine definition"),
    h("div.grid-2-1", card(null, form), help),
  );
  check();
}
