"""Lay out a machine definition as a layered state diagram (pure, no I/O).

``layout(definition)`` turns a normalized definition (SEMANTICS §1.3) into
coordinates the web console draws as SVG: one box per state, one labelled
connector per transition. The Sugiyama layered layout of ``grandalf`` does the
work; each transition becomes a small vertex of its own (the size of its label
``EVENT [guard]``) between its sources and its target, so labels get room of
their own and parallel transitions or self-transitions never overlap.

The result (JSON-ready)::

    {"width", "height",
     "nodes": [{"id", "x", "y", "w", "h", "initial"}],          # x, y = centre
     "edges": [{"index", "event", "guard", "label", "from", "to",
                "label_box": {"x", "y", "w", "h"},               # centre and size
                "inbound": [[[x, y], ...], ...],                 # one per source
                "outbound": [[x, y], ...]}]}                     # label -> target

Polylines start and end on the boxes' borders. Coordinates are rounded to one
decimal and the whole drawing is shifted to start at ``MARGIN``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import route_with_lines

STATE_HEIGHT = 40.0
STATE_MIN_WIDTH = 96.0
STATE_CHAR_WIDTH = 8.4
LABEL_HEIGHT = 22.0
LABEL_CHAR_WIDTH = 6.8
MARGIN = 24.0
COMPONENT_GAP = 48.0
LOOP_OFFSET = 10.0

Point = tuple[float, float]


class _BoxView:
    """The view grandalf expects on a vertex: a size and, after layout, a centre."""

    def __init__(self, w: float, h: float) -> None:
        self.w = w
        self.h = h
        self.xy: Point = (0.0, 0.0)


class _PathView:
    """The view grandalf expects on an edge: it receives the routed polyline."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.head_angle = 0.0

    def setpath(self, pts: list[Point]) -> None:
        self.points = [(float(x), float(y)) for x, y in pts]


@dataclass
class _Transition:
    index: int
    event: str
    guard: str | None
    sources: list[str]
    target: str
    vertex: Vertex
    inbound: list[Edge] = field(default_factory=list)
    outbound: Edge | None = None

    @property
    def label(self) -> str:
        return transition_label(self.event, self.guard)


def transition_label(event: str, guard: str | None) -> str:
    """The text shown on a transition: ``EVENT`` or ``EVENT [guard]``."""
    return f"{event} [{guard}]" if guard else event


def _state_vertex(name: str) -> Vertex:
    vertex = Vertex(name)
    width = max(STATE_MIN_WIDTH, len(name) * STATE_CHAR_WIDTH + 36.0)
    vertex.view = _BoxView(width, STATE_HEIGHT)
    return vertex


def _label_vertex(index: int, label: str) -> Vertex:
    vertex = Vertex(("transition", index))
    vertex.view = _BoxView(len(label) * LABEL_CHAR_WIDTH + 16.0, LABEL_HEIGHT)
    return vertex


def _edge(a: Vertex, b: Vertex) -> Edge:
    edge = Edge(a, b)
    edge.view = _PathView()
    return edge


def _sources(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    return [s for s in raw if isinstance(s, str)] if isinstance(raw, list) else []


def _build(
    definition: Mapping[str, Any],
) -> tuple[dict[str, Vertex], list[_Transition], list[Edge]]:
    states: dict[str, Vertex] = {}
    for name in definition.get("states", []):
        if isinstance(name, str) and name not in states:
            states[name] = _state_vertex(name)
    transitions: list[_Transition] = []
    edges: list[Edge] = []
    for index, raw in enumerate(definition.get("transitions", [])):
        target = raw.get("to")
        if target not in states:
            continue
        event, guard = str(raw.get("event", "")), raw.get("guard")
        label = transition_label(event, guard)
        t = _Transition(index, event, guard, [], target, _label_vertex(index, label))
        for source in _sources(raw.get("from")):
            if source in states and source not in t.sources:
                t.sources.append(source)
                t.inbound.append(_edge(states[source], t.vertex))
        t.outbound = _edge(t.vertex, states[target])
        edges += [*t.inbound, t.outbound]
        transitions.append(t)
    return states, transitions, edges


def _roots(component: Any, initial: Vertex | None, order: Sequence[Vertex]) -> list[Vertex]:
    members = set(component.sV)
    if initial is not None and initial in members:
        return [initial]
    roots = [v for v in component.sV if not v.e_in()]
    if roots:
        return roots
    return [next(v for v in [*order, *component.sV] if v in members)]


def _lay_out_components(graph: Graph, initial: Vertex | None, order: Sequence[Vertex]) -> None:
    """Lay out each connected component, then place them side by side."""
    x_offset = 0.0
    for component in graph.C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace = 28
        sugiyama.yspace = 34
        sugiyama.route_edge = route_with_lines
        sugiyama.init_all(roots=_roots(component, initial, order))
        sugiyama.draw(3)
        vertices = list(component.sV)
        left = min(v.view.xy[0] - v.view.w / 2 for v in vertices)
        right = max(v.view.xy[0] + v.view.w / 2 for v in vertices)
        shift = x_offset - left
        for v in vertices:
            v.view.xy = (v.view.xy[0] + shift, v.view.xy[1])
        for e in component.sE:
            e.view.points = [(x + shift, y) for x, y in e.view.points]
        x_offset += right - left + COMPONENT_GAP


def _oriented(edge: Edge) -> list[Point]:
    """The edge's polyline from its source to its target (cycles were routed reversed)."""
    points = list(edge.view.points)
    if len(points) < 2:
        return [edge.v[0].view.xy, edge.v[1].view.xy]
    start = edge.v[0].view.xy
    if math.dist(points[-1], start) < math.dist(points[0], start):
        points.reverse()
    return points


def _nudge(points: list[Point], offset: float) -> list[Point]:
    """Shift a polyline sideways (perpendicular to its overall direction)."""
    (x0, y0), (x1, y1) = points[0], points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    dx, dy = -(y1 - y0) / length * offset, (x1 - x0) / length * offset
    return [(x + dx, y + dy) for x, y in points]


def _edge_json(t: _Transition) -> dict[str, Any]:
    assert t.outbound is not None
    inbound = [_oriented(e) for e in t.inbound]
    outbound = _oriented(t.outbound)
    if t.target in t.sources:  # a self-transition: its two legs would coincide
        at = t.sources.index(t.target)
        inbound[at] = _nudge(inbound[at], LOOP_OFFSET)
        outbound = _nudge(outbound, LOOP_OFFSET)
    x, y = t.vertex.view.xy
    return {
        "index": t.index,
        "event": t.event,
        "guard": t.guard,
        "label": t.label,
        "from": list(t.sources),
        "to": t.target,
        "label_box": {"x": x, "y": y, "w": t.vertex.view.w, "h": t.vertex.view.h},
        "inbound": inbound,
        "outbound": outbound,
    }


def _node_json(name: str, vertex: Vertex, initial: str | None) -> dict[str, Any]:
    x, y = vertex.view.xy
    return {
        "id": name,
        "x": x,
        "y": y,
        "w": vertex.view.w,
        "h": vertex.view.h,
        "initial": name == initial,
    }


def layout(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Node positions and edge polylines for a (normalized) machine definition."""
    states, transitions, edges = _build(definition)
    initial_name = definition.get("initial")
    initial = states.get(initial_name) if isinstance(initial_name, str) else None
    vertices = [*states.values(), *(t.vertex for t in transitions)]
    if vertices:
        _lay_out_components(Graph(vertices, edges), initial, list(states.values()))
    nodes = [_node_json(name, v, initial_name) for name, v in states.items()]
    return _normalise({"nodes": nodes, "edges": [_edge_json(t) for t in transitions]})


def _bounds(drawing: Mapping[str, Any]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    boxes = [*drawing["nodes"], *(e["label_box"] for e in drawing["edges"])]
    for box in boxes:
        xs += [box["x"] - box["w"] / 2, box["x"] + box["w"] / 2]
        ys += [box["y"] - box["h"] / 2, box["y"] + box["h"] / 2]
    for edge in drawing["edges"]:
        for line in [*edge["inbound"], edge["outbound"]]:
            xs += [p[0] for p in line]
            ys += [p[1] for p in line]
    if not xs:
        return 0.0, 0.0, 0.0, 0.0
    return min(xs), min(ys), max(xs), max(ys)


def _normalise(drawing: dict[str, Any]) -> dict[str, Any]:
    """Shift everything to start at MARGIN, round, and add the overall size."""
    left, top, right, bottom = _bounds(drawing)
    dx, dy = MARGIN - left, MARGIN - top

    def point(p: Sequence[float]) -> list[float]:
        return [round(p[0] + dx, 1), round(p[1] + dy, 1)]

    def box(b: dict[str, Any]) -> None:
        b["x"], b["y"] = point((b["x"], b["y"]))
        b["w"], b["h"] = round(b["w"], 1), round(b["h"], 1)

    for node in drawing["nodes"]:
        box(node)
    for edge in drawing["edges"]:
        box(edge["label_box"])
        edge["inbound"] = [[point(p) for p in line] for line in edge["inbound"]]
        edge["outbound"] = [point(p) for p in edge["outbound"]]
    drawing["width"] = round(right - left + 2 * MARGIN, 1)
    drawing["height"] = round(bottom - top + 2 * MARGIN, 1)
    return drawing
