"""graph.topology: the edges of a spec checked whole: unknown inputs, cycles, nodes that
never reach a producer, several nodes writing packets to the graph's stdout."""

from __future__ import annotations

from vflow_cli.graph.model import Node, Spec


def check_edges(spec: Spec, lines, err) -> None:
    nodes = spec.nodes
    broken: set[str] = set()  # nodes with a bad input: already reported
    for node in nodes.values():
        for source in node.inputs:
            if source not in nodes or source == node.name:
                broken.add(node.name)
            if source not in nodes:
                known = ", ".join(n for n in nodes if n != node.name)
                err(
                    lines.node(node.name, "from"),
                    f"node '{node.name}': unknown input '{source}' (nodes: {known})",
                )
            elif source == node.name:
                err(lines.node(node.name, "from"), f"node '{node.name}': reads from itself")
            else:
                nodes[source].readers.append(node.name)
    for node in nodes.values():
        if node.kind == "":
            node.kind = "processor" if node.readers else "consumer"
        elif node.kind == "consumer" and node.readers:
            reader = node.readers[0]
            err(
                lines.node(reader, "from"),
                f"node '{reader}': reads from '{node.name}', a consumer, which writes no packets",
            )
    cycles = _cycles(nodes)
    on_cycle: set[str] = set()
    for cycle in cycles:
        on_cycle.update(cycle)
        first = min(cycle, key=lambda n: nodes[n].line)
        err(
            lines.node(first, "from"),
            f"node '{first}': cycle {' -> '.join([*cycle, cycle[0]])} (a graph must not loop)",
        )
    reached = _reachable(nodes)
    for node in nodes.values():
        if not broken and node.name not in reached | on_cycle and node.kind != "producer":
            err(
                lines.node(node.name, "from"),
                f"node '{node.name}': its inputs never reach a producer",
            )
    if not any(n.kind == "producer" for n in nodes.values()):
        err(1, "no producer: at least one node must produce packets (a node without `from`)")
    to_stdout = [
        n for n in nodes.values() if n.kind != "consumer" and not n.readers and n.stdout is None
    ]
    if len(to_stdout) > 1:
        names = ", ".join(f"'{n.name}'" for n in to_stdout)
        err(
            to_stdout[1].line,
            f"node '{to_stdout[1].name}': {names} would all write packets to "
            'the graph\'s stdout; give all but one a reader or `stdout = "FILE"`',
        )


def _cycles(nodes: dict[str, Node]) -> list[list[str]]:
    """Each cycle once, as the list of nodes on it in data-flow order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for reader in nodes[name].readers:
            if state.get(reader) == 1:
                cycle = path[path.index(reader) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif reader not in state:
                visit(reader)
        path.pop()
        state[name] = 2

    for name in nodes:
        if name not in state:
            visit(name)
    return found


def _reachable(nodes: dict[str, Node]) -> set[str]:
    todo = [n for n, node in nodes.items() if node.kind == "producer"]
    reached = set(todo)
    while todo:
        for reader in nodes[todo.pop()].readers:
            if reader not in reached:
                reached.add(reader)
                todo.append(reader)
    return reached
