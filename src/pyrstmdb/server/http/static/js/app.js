// Hash router: each page renders into <main> and returns a cleanup function.
import { forgetToken } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import * as events from "./pages/events.js";
import * as instance from "./pages/instance.js";
import * as instances from "./pages/instances.js";
import * as machine from "./pages/machine.js";
import * as machines from "./pages/machines.js";
import * as editor from "./pages/editor.js";
import * as storage from "./pages/storage.js";

const routes = [
  [/^\/machines\/?$/, "machines", machines.render],
  [/^\/machines\/new$/, "machines", editor.render],
  [/^\/machines\/([^/]+)\/(\d+)$/, "machines", machine.render],
  [/^\/instances\/?$/, "instances", instances.render],
  [/^\/instances\/([^/]+)$/, "instances", instance.render],
  [/^\/events\/?$/, "events", events.render],
  [/^\/storage\/?$/, "storage", storage.render],
];

let cleanup = null;
let generation = 0;

async function route() {
  const raw = location.hash.replace(/^#/, "") || "/machines";
  const [path, search = ""] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(search));
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup never blocks navigation */
    }
    cleanup = null;
  }
  const view = clear(document.getElementById("view"));
  const mine = ++generation;
  for (const [pattern, nav, render] of routes) {
    const m = pattern.exec(path);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    const args = m.slice(1).map(decodeURIComponent);
    try {
      const done = await render(view, params, ...args);
      if (mine === generation) cleanup = typeof done === "function" ? done : null;
      else if (typeof done === "function") done();
    } catch (err) {
      if (mine === generation) view.append(errorBox(err));
    }
    return;
  }
  view.append(h("h1", "Not found"), h("p", `No page at ${path}.`));
}

/** Navigate to a hash path, optionally with query parameters. */
export function go(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const target = `#${path}${q.toString() ? "?" + q : ""}`;
  if (location.hash === target) route();
  else location.hash = target;
}

document.getElementById("forget-token").addEventListener("click", () => {
  forgetToken();
  route();
});
window.addEventListener("hashchange", route);
route();
