"""graph.spec: load a graph spec (TOML) and check it whole before anything starts.

Every problem becomes one line naming the spec file, the line and the node:

    spec.toml:12: node 'det': unknown input 'cam2' (nodes: cam, view)

See vflow-graph(5) for the format.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from vflow_cli.graph.model import (
    DEFAULT_QUEUE,
    FAILURE,
    GRAPH_KEYS,
    LEAKY,
    Node,
    Spec,
    SpecError,
)
from vflow_cli.graph.tables import check_program, node_from_table, registry
from vflow_cli.graph.topology import check_edges

__all__ = ["Node", "Spec", "SpecError", "load"]


class _Lines:
    """Where things are in the spec text: tomllib gives values, not positions."""

    _HEADER = re.compile(r"""^\s*\[\s*nodes\s*\.\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*\]""")
    _TABLE = re.compile(r"^\s*\[")
    _KEY = re.compile(r"""^\s*(?:"([^"]+)"|([A-Za-z0-9_-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self.nodes: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        self.graph: dict[str, int] = {}
        self.seen: dict[int, tuple[str, str]] = {}  # line -> (section, key) set there
        self.last = max(1, len(text.rstrip().splitlines()))
        section: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            match = self._HEADER.match(line)
            if match:
                section = next(g for g in match.groups() if g is not None)
                self.nodes.setdefault(section, number)
                continue
            if self._TABLE.match(line):
                section = "[graph]" if re.match(r"^\s*\[\s*graph\s*\]", line) else None
                continue
            key = self._KEY.match(line)
            if key and section is not None:
                name = key.group(1) or key.group(2)
                self.seen[number] = (section, name)
                if section == "[graph]":
                    self.graph.setdefault(name, number)
                else:
                    self.keys.setdefault((section, name), number)

    def twice(self, number: int) -> str:
        """What the key set twice at line `number` is, for people."""
        for (node, key), first in self.keys.items():
            if self.seen.get(number) == (node, key):
                return f"node '{node}': `{key}` is set twice (first at line {first})"
        for key, first in self.graph.items():
            if self.seen.get(number) == ("[graph]", key):
                return f"[graph]: `{key}` is set twice (first at line {first})"
        return "a key is set twice in the same table"

    def node(self, name: str, key: str | None = None) -> int:
        if key is not None and (name, key) in self.keys:
            return self.keys[(name, key)]
        return self.nodes.get(name, 1)


def load(path: str | os.PathLike[str], *, text: str | None = None) -> Spec:
    """Parse and validate a spec; raise SpecError with every problem found."""
    shown = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SpecError([f"{shown}: cannot read the spec: {reason}"]) from None
    lines = _Lines(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([_toml_error(shown, str(exc), lines)]) from None
    return _build(shown, data, lines)


def _toml_error(shown: str, message: str, lines: _Lines) -> str:
    match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
    end = re.search(r"\s*\(at end of document\)$", message)
    number = match.group(1) if match else str(lines.last) if end else "1"
    message = message[: match.start()] if match else message[: end.start()] if end else message
    twice = re.match(r"Cannot declare \('nodes', '([^']+)'\) twice", message)
    if twice:
        first = lines.nodes.get(twice.group(1))
        where = f" (first at line {first})" if first and str(first) != number else ""
        return f"{shown}:{number}: node '{twice.group(1)}': defined twice{where}"
    if message.startswith("Cannot overwrite a value"):
        return f"{shown}:{number}: {lines.twice(int(number))}"
    return f"{shown}:{number}: not valid TOML: {message}"


def _build(shown: str, data: dict[str, Any], lines: _Lines) -> Spec:
    errors: list[tuple[int, str]] = []

    def err(line: int, text: str) -> None:
        errors.append((line, f"{shown}:{line}: {text}"))

    for key in data:
        if key not in ("nodes", "graph"):
            err(1, f"unknown table or key '{key}' (a spec has [graph] and [nodes.NAME] tables)")
    graph = data.get("graph", {})
    spec = Spec(shown, {})
    default_size, default_leaky = DEFAULT_QUEUE, "no"
    if not isinstance(graph, dict):
        err(1, "'graph' must be a table")
        graph = {}
    for key in graph:
        if key not in GRAPH_KEYS:
            err(lines.graph.get(key, 1), f"[graph]: unknown key '{key}' ({', '.join(GRAPH_KEYS)})")
    if "on_failure" in graph:
        if graph["on_failure"] not in FAILURE:
            err(
                lines.graph.get("on_failure", 1),
                f"[graph]: on_failure must be one of {', '.join(FAILURE)}",
            )
        else:
            spec.on_failure = graph["on_failure"]
    if "grace" in graph:
        grace = graph["grace"]
        if type(grace) not in (int, float) or grace < 0:
            err(lines.graph.get("grace", 1), "[graph]: grace must be a number of seconds >= 0")
        else:
            spec.grace = float(grace)
    if "queue" in graph:
        parsed = _queue(graph["queue"])
        if isinstance(parsed, str):
            err(lines.graph.get("queue", 1), f"[graph]: {parsed}")
        else:
            default_size, default_leaky = parsed

    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        err(1, "no nodes: add at least one [nodes.NAME] table with a `run` list")
        nodes = {}
    stages, infos = registry()
    for name, table in nodes.items():
        line = lines.node(name)
        if not isinstance(table, dict):
            err(line, f"node '{name}': must be a table ([nodes.{name}])")
            continue
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            err(line, f"node '{name}': a name is letters, digits, '_', '-' and '.'")
        node = node_from_table(name, table, line, lines, stages, infos, err)
        if node is not None and "run" not in table:
            problem = check_program(node, table, shown)
            if problem:
                err(
                    lines.node(name, "python" if "python" in table else "command"),
                    f"node '{name}': {problem}",
                )
                node = None
        if node is not None:
            node.queue_size, node.leaky = default_size, default_leaky
            if "queue" in table:
                parsed = _queue(table["queue"])
                if isinstance(parsed, str):
                    err(lines.node(name, "queue"), f"node '{name}': {parsed}")
                else:
                    node.queue_size, node.leaky = parsed
            spec.nodes[name] = node
    if not errors:
        check_edges(spec, lines, err)
    if not errors and any(isinstance(t, dict) and "group" in t for t in nodes.values()):
        from vflow_cli.graph.groups import merge

        if merge(spec, nodes, lines, err):
            check_edges(spec, lines, err)  # the graph again, each group one node
    if errors:
        errors.sort(key=lambda e: e[0])
        raise SpecError([text for _, text in errors])
    return spec


def _queue(value: Any) -> tuple[int, str] | str:
    if not isinstance(value, dict):
        return 'queue must be a table, e.g. queue = { size = 8, leaky = "old" }'
    for key in value:
        if key not in ("size", "leaky"):
            return f"queue: unknown key '{key}' (size, leaky)"
    size = value.get("size", DEFAULT_QUEUE)
    leaky = value.get("leaky", "no")
    if type(size) is not int or size < 1:
        return "queue: size must be a whole number of packets >= 1"
    if leaky not in LEAKY:
        return 'queue: leaky must be "no" (block), "old" (drop oldest) or "new" (drop newest)'
    return size, leaky
