// Draws a laid-out state diagram (GET /v1/console/.../layout) as SVG.
const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

const pathOf = (points) => points.map(([x, y], i) => `${i ? "L" : "M"}${x} ${y}`).join(" ");

let uid = 0;

/**
 * drawDiagram(layout, {onState(name)}) -> {svg, highlight(state, allowedEvents), setCounts(map)}
 * Nodes are <g class="node" data-state>, transitions <g class="edge" data-event data-index>.
 */
export function drawDiagram(layout, { onState } = {}) {
  const id = `arrow-${++uid}`;
  const svg = s("svg", {
    class: "diagram",
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: "img",
    "aria-label": "state diagram",
  });
  const defs = s("defs");
  for (const [suffix, cls] of [["", "arrow"], ["-on", "arrow on"]]) {
    const marker = s("marker", {
      id: id + suffix,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 9,
      markerHeight: 9,
      markerUnits: "userSpaceOnUse",
      orient: "auto-start-reverse",
    });
    marker.append(s("path", { d: "M0 0 L10 5 L0 10 z", class: cls }));
    defs.append(marker);
  }
  svg.append(defs);

  const edgeLayer = s("g", { class: "edges" });
  const nodeLayer = s("g", { class: "nodes" });
  svg.append(edgeLayer, nodeLayer);
  const edges = layout.edges.map((edge) => drawEdge(edgeLayer, edge, id));
  const nodes = new Map();
  for (const node of layout.nodes) nodes.set(node.id, drawNode(nodeLayer, node, onState));

  return {
    svg,
    highlight(state, allowed = null) {
      for (const [name, g] of nodes) g.classList.toggle("current", name === state);
      for (const { g, edge, paths } of edges) {
        const on = state !== null && edge.from.includes(state) && (!allowed || allowed.has(edge.event));
        g.classList.toggle("enabled", on);
        const out = paths[paths.length - 1];
        out.setAttribute("marker-end", `url(#${id}${on ? "-on" : ""})`);
      }
    },
    flash(event, fromState) {
      for (const { g, edge } of edges) {
        if (edge.event === event && edge.from.includes(fromState)) {
          g.classList.remove("flash");
          void g.getBBox();
          g.classList.add("flash");
        }
      }
    },
    setCounts(counts) {
      for (const [name, g] of nodes) {
        const badge = g.querySelector(".count");
        const n = counts ? counts[name] ?? 0 : null;
        badge.style.display = n ? "" : "none";
        badge.querySelector("text").textContent = n === null ? "" : n.toLocaleString();
        const w = Math.max(20, 8 + 7 * String(n ?? "").length + (n > 999 ? 4 : 0));
        badge.querySelector("rect").setAttribute("width", w);
        badge.querySelector("rect").setAttribute("x", -w / 2);
        g.classList.toggle("populated", Boolean(n));
      }
    },
  };
}

function drawNode(layer, node, onState) {
  const g = s("g", { class: "node", "data-state": node.id, transform: `translate(${node.x} ${node.y})` });
  if (node.initial) {
    g.classList.add("initial");
    const x0 = -node.w / 2;
    g.append(s("circle", { class: "start", cx: x0 - 16, cy: 0, r: 5 }));
    g.append(s("path", { class: "start-line", d: `M${x0 - 11} 0 L${x0 - 1} 0` }));
  }
  g.append(s("rect", { x: -node.w / 2, y: -node.h / 2, width: node.w, height: node.h, rx: 10 }));
  g.append(s("text", { class: "label", "text-anchor": "middle", dy: "0.35em" }, node.id));
  const badge = s("g", { class: "count", transform: `translate(${node.w / 2 - 4} ${-node.h / 2})` });
  badge.append(s("rect", { x: -10, y: -9, width: 20, height: 18, rx: 9 }));
  badge.append(s("text", { "text-anchor": "middle", dy: "0.35em" }));
  badge.style.display = "none";
  g.append(badge);
  g.append(s("title", {}, node.initial ? `${node.id} (initial state)` : node.id));
  if (onState) {
    g.classList.add("clickable");
    g.addEventListener("click", () => onState(node.id));
  }
  layer.append(g);
  return g;
}

function drawEdge(layer, edge, markerId) {
  const g = s("g", { class: "edge", "data-event": edge.event, "data-index": edge.index });
  const paths = [];
  for (const line of edge.inbound) {
    const p = s("path", { d: pathOf(line), class: "leg" });
    paths.push(p);
    g.append(p);
  }
  const out = s("path", { d: pathOf(edge.outbound), class: "leg", "marker-end": `url(#${markerId})` });
  paths.push(out);
  g.append(out);
  const b = edge.label_box;
  g.append(s("rect", { class: "tag", x: b.x - b.w / 2, y: b.y - b.h / 2, width: b.w, height: b.h, rx: 5 }));
  const text = s("text", { class: "tag-text", x: b.x, y: b.y, "text-anchor": "middle", dy: "0.35em" });
  text.append(s("tspan", { class: "event" }, edge.event));
  if (edge.guard) text.append(s("tspan", { class: "guard" }, ` [${edge.guard}]`));
  g.append(text);
  const from = edge.from.length ? edge.from.join(", ") : "(no source)";
  g.append(s("title", {}, `${from} → ${edge.to} on ${edge.label}`));
  layer.append(g);
  return { g, edge, paths };
}
