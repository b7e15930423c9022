// Small DOM helpers shared by the pages.

/** h("div.card#id", {attrs, on: {click}}, ...children): build an element. */
export function h(tag, props, ...children) {
  const [, name, rest] = /^([a-z0-9]+)(.*)$/i.exec(tag);
  const el = document.createElement(name);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

const INLINE_WIDTH = 96;

/** One-line JSON with a space after each comma and colon (string contents untouched). */
function inline(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(inline).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(", ")}}`;
}

/** Indented JSON where an array or object that fits on one line stays on one line. */
export function json(value, indent = "") {
  if (value === undefined) return undefined;
  const flat = inline(value);
  if (value === null || typeof value !== "object" || flat.length + indent.length <= INLINE_WIDTH) {
    return flat;
  }
  const inner = indent + "  ";
  const items = Array.isArray(value)
    ? value.map((v) => inner + json(v, inner))
    : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${json(v, inner)}`);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  return items.length ? `${open}\n${items.join(",\n")}\n${indent}${close}` : open + close;
}

/** A <pre> with syntax-coloured JSON (built from text nodes, never innerHTML). */
export function jsonBlock(value, cls = "") {
  const pre = h(`pre.json${cls ? "." + cls : ""}`);
  const text = json(value) ?? "null";
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const m of text.matchAll(token)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    if (m[1] && m[2]) {
      pre.append(h("span.j-key", m[1]), m[2]);
    } else if (m[1]) pre.append(h("span.j-str", m[1]));
    else if (m[3]) pre.append(h("span.j-lit", m[3]));
    else pre.append(h("span.j-num", m[4]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

export function fmtTime(ms) {
  if (ms === undefined || ms === null) return "";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function fmtAgo(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return fmtTime(ms);
}

export function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtNum(n) {
  return typeof n === "number" ? n.toLocaleString() : String(n ?? "—");
}

/** Parse JSON typed into an editor; returns {value} or {error, line, column}. */
export function parseJson(text, { allowEmpty = false } = {}) {
  if (allowEmpty && !text.trim()) return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    const pos = /position (\d+)/.exec(err.message);
    let where = "";
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split("\n").length;
      const column = Number(pos[1]) - before.lastIndexOf("\n");
      where = ` (line ${line}, column ${column})`;
    }
    return { error: `Invalid JSON${where}: ${err.message.replace(/ in JSON.*$/, "")}` };
  }
}

export function errorBox(err) {
  const code = err && err.code ? h("span.code", err.code) : null;
  const message = (err && err.message) || String(err);
  return h("div.alert.error", { role: "alert" }, code, h("span", message.replace(/^core error: /, "")));
}

export function empty(text) {
  return h("div.empty", text);
}

export function link(href, text, cls) {
  return h(cls ? `a.${cls}` : "a", { href }, text);
}

export function enc(part) {
  return encodeURIComponent(part);
}
