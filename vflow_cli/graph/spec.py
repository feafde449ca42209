"""graph.spec: load a graph spec (TOML) and check it whole before anything starts.

Every problem becomes one line naming the spec file, the line and the node:

    spec.toml:12: node 'det': unknown input 'cam2' (nodes: cam, view)

See vflow-graph(5) for the format.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_KEYS = (
    *("run", "command", "python", "from", "join", "unmatched", "queue", "workers", "window"),
    *("device", "env", "cwd", "stdout", "kind"),
)
GRAPH_KEYS = ("on_failure", "grace", "queue")
LEAKY = ("no", "old", "new")
JOINS = ("merge", "zip")
UNMATCHED = ("drop", "keep")
DEVICES = ("cpu", "gpu", "prefer-gpu")
KINDS = ("producer", "processor", "consumer")
FAILURE = ("stop", "continue")
DEFAULT_QUEUE = 16
DEFAULT_WINDOW = 8
DEFAULT_GRACE = 10.0


class SpecError(Exception):
    """One or more problems with a spec, each already formatted as one line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class Node:
    name: str
    line: int  # where its table starts
    argv: list[str]  # what to execute
    label: str  # what it runs, for people: "int 0 40", "python3 burn.py"
    kind: str  # producer | processor | consumer
    inputs: list[str] = field(default_factory=list)
    join: str = "merge"
    unmatched: str = "drop"
    queue_size: int = DEFAULT_QUEUE
    leaky: str = "no"
    workers: int = 1
    window: int = DEFAULT_WINDOW
    device: str = ""  # "" (leave CUDA_VISIBLE_DEVICES alone), cpu, gpu, prefer-gpu
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stdout: str | None = None
    readers: list[str] = field(default_factory=list)  # filled in by validation


@dataclass
class Spec:
    path: str
    nodes: dict[str, Node]  # in the order of the file
    on_failure: str = "stop"
    grace: float = DEFAULT_GRACE


class _Lines:
    """Where things are in the spec text: tomllib gives values, not positions."""

    _HEADER = re.compile(r"""^\s*\[\s*nodes\s*\.\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*\]""")
    _TABLE = re.compile(r"^\s*\[")
    _KEY = re.compile(r"""^\s*(?:"([^"]+)"|([A-Za-z0-9_-]+))\s*=""")

    def __init__(self, text: str) -> None:
        self.nodes: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        self.graph: dict[str, int] = {}
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
                if section == "[graph]":
                    self.graph.setdefault(name, number)
                else:
                    self.keys.setdefault((section, name), number)

    def node(self, name: str, key: str | None = None) -> int:
        if key is not None and (name, key) in self.keys:
            return self.keys[(name, key)]
        return self.nodes.get(name, 1)


SERVICES = ("worker",)  # runners a node may run: they work beside the graph's pipes


def _registry() -> tuple[dict[str, Any], dict[str, str]]:
    from vflow_cli.cli import all_commands
    from vflow_cli.stage import INFO, REGISTRY

    commands = all_commands()  # stages are imported lazily: a spec may name any of them
    kinds = {name: info.kind for name, info in INFO.items()}
    services = {name: commands[name] for name in SERVICES if name in commands}
    # a `vflow worker` node reads and writes NATS, not pipes: a source of nothing
    kinds.update(dict.fromkeys(services, "producer"))
    return {**REGISTRY, **services}, kinds


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
    number = match.group(1) if match else "1"
    message = message[: match.start()] if match else message
    twice = re.match(r"Cannot declare \('nodes', '([^']+)'\) twice", message)
    if twice:
        first = lines.nodes.get(twice.group(1))
        where = f" (first at line {first})" if first and str(first) != number else ""
        return f"{shown}:{number}: node '{twice.group(1)}': defined twice{where}"
    if message.startswith("Cannot overwrite a value"):
        return f"{shown}:{number}: a key is set twice ({message.lower()})"
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
    registry, stage_kinds = _registry()
    for name, table in nodes.items():
        line = lines.node(name)
        if not isinstance(table, dict):
            err(line, f"node '{name}': must be a table ([nodes.{name}])")
            continue
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            err(line, f"node '{name}': a name is letters, digits, '_', '-' and '.'")
        node = _node(name, table, line, lines, registry, stage_kinds, err)
        if node is not None and "run" not in table:
            problem = _check_program(node, table, shown)
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
        _check_edges(spec, lines, err)
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


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _node(name, table, line, lines, registry, stage_kinds, err) -> Node | None:
    def at(key: str) -> int:
        return lines.node(name, key)

    bad = False
    for key in table:
        if key not in NODE_KEYS:
            err(at(key), f"node '{name}': unknown key '{key}' (one of: {', '.join(NODE_KEYS)})")
            bad = True
    given = [k for k in ("run", "command", "python") if k in table]
    if len(given) != 1:
        what = "has " + " and ".join(f"`{k}`" for k in given) if given else "has nothing to run"
        err(
            line,
            f"node '{name}': {what}; give exactly one of `run` (a vflow stage), "
            "`command` (any program) or `python` (a script run with vflow's Python)",
        )
        return None
    how = given[0]
    argv_in = table[how]
    if not _strings(argv_in):
        err(
            at(how),
            f"node '{name}': `{how}` must be a non-empty list of strings, "
            'e.g. ["int", "0", "40"]',
        )
        return None
    kind = table.get("kind")
    if kind is not None and kind not in KINDS:
        err(at("kind"), f"node '{name}': kind must be one of {', '.join(KINDS)}")
        bad = True
    if how == "run":
        stage = argv_in[0]
        if stage not in registry:
            near = [s for s in sorted(registry) if s.startswith(stage[:2])]
            hint = f" (did you mean {', '.join(near)}?)" if near else " (see `vflow --help`)"
            err(at("run"), f"node '{name}': unknown stage '{stage}'{hint}")
            return None
        if stage == "graph":
            err(at("run"), f"node '{name}': a graph cannot run `vflow graph` as a node")
            return None
        real = stage_kinds.get(stage, "processor")
        if kind is not None and kind != real:
            err(at("kind"), f"node '{name}': '{stage}' is a {real}, not a {kind}")
            bad = True
        kind = real
        problem = _check_arguments(registry[stage], stage, argv_in[1:])
        if problem:
            err(at("run"), f"node '{name}': {problem}")
            bad = True
        argv = [sys.executable, "-m", "vflow_cli", *argv_in]
        label = " ".join(argv_in)
    elif how == "python":
        argv = [sys.executable, *argv_in]
        label = "python " + " ".join(argv_in)
    else:
        argv = list(argv_in)
        label = " ".join(argv_in)
    inputs = table.get("from", [])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        err(at("from"), f"node '{name}': `from` must be a list of node names")
        return None
    if len(set(inputs)) != len(inputs):
        err(at("from"), f"node '{name}': `from` names a node twice")
        bad = True
    if kind is None:  # a command: a producer without inputs, else decided by its readers
        kind = "producer" if not inputs else ""
    node = Node(name, line, argv, label, kind, inputs=list(inputs))
    if how == "run" and argv_in[0] in SERVICES:
        node.stdout = os.devnull  # it writes no packets
    if kind == "producer" and inputs:
        err(
            at("from"),
            f"node '{name}': '{label.split()[0]}' is a producer; it takes no input (remove `from`)",
        )
        bad = True
    if kind in ("processor", "consumer") and not inputs:
        err(
            line,
            f"node '{name}': '{label.split()[0]}' is a {kind} and needs an input: "
            'add from = ["NODE"]',
        )
        bad = True
    for key, choices in (("join", JOINS), ("unmatched", UNMATCHED), ("device", DEVICES)):
        if key in table:
            if table[key] not in choices:
                err(at(key), f"node '{name}': {key} must be one of {', '.join(choices)}")
                bad = True
            else:
                setattr(node, key, table[key])
    if "join" in table and len(inputs) < 2:
        err(at("join"), f"node '{name}': `join` needs two inputs or more in `from`")
        bad = True
    for key in ("workers", "window"):
        if key in table:
            value = table[key]
            if type(value) is not int or value < 1:
                err(at(key), f"node '{name}': {key} must be a whole number >= 1")
                bad = True
            else:
                setattr(node, key, value)
    if node.workers > 1 and kind == "producer":
        err(
            at("workers"),
            f"node '{name}': a producer cannot have workers (each copy would "
            "produce the whole stream)",
        )
        bad = True
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, (str, int, float)) for v in env.values()):
        err(at("env"), f"node '{name}': env must be a table of strings, e.g. env = {{ K = \"v\" }}")
        bad = True
    else:
        node.env = {str(k): str(v) for k, v in env.items()}
    for key in ("cwd", "stdout"):
        if key in table:
            if not isinstance(table[key], str) or not table[key]:
                err(at(key), f"node '{name}': {key} must be a path")
                bad = True
            else:
                setattr(node, key, table[key])
    return None if bad else node


def _check_program(node: Node, table: dict[str, Any], shown: str) -> str | None:
    """A `command` must be found on PATH, a `python` script where the node will run."""
    import shutil

    here = Path(shown).resolve().parent
    cwd = here / table["cwd"] if isinstance(table.get("cwd"), str) else Path.cwd()
    if "python" in table:
        script = table["python"][0]
        if script.startswith("-"):
            return None  # python -m module, python -c code: nothing to look for
        if not (cwd / script).is_file():
            return f"no Python script {script!r} in {cwd} (set `cwd`, relative to the spec)"
        return None
    program = table["command"][0]
    if os.sep in program:
        found = (cwd / program).is_file() and os.access(cwd / program, os.X_OK)
    else:
        found = shutil.which(program) is not None
    return None if found else f"program {program!r} not found (on PATH, or from {cwd})"


def _check_arguments(command: Any, stage: str, args: list[str]) -> str | None:
    """Parse a stage's arguments the way the stage will, without running it."""
    import click

    if any(a in ("-h", "--help") for a in args):
        return f"`{stage} --help` in a graph prints help instead of running"
    try:
        with command.make_context(stage, list(args)):
            pass
    except click.ClickException as exc:
        return f"vflow {stage}: {exc.format_message()}"
    except click.exceptions.Exit:
        return f"`{stage}` with these arguments prints something and exits"
    return None


def _check_edges(spec: Spec, lines: _Lines, err) -> None:
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


# -- devices ---------------------------------------------------------------------------------


def visible_gpus(option: str | None, probe: bool = True) -> list[str]:
    """--gpus, else VFLOW_GPUS, else CUDA_VISIBLE_DEVICES, else (with probe) the GPUs the
    NVIDIA driver lists; none known otherwise."""
    for text in (option, os.environ.get("VFLOW_GPUS"), os.environ.get("CUDA_VISIBLE_DEVICES")):
        if text is not None:
            return [g.strip() for g in text.split(",") if g.strip() and g.strip() != "-1"]
    return nvidia_gpus() if probe else []


def nvidia_gpus() -> list[str]:
    """The indices nvidia-smi reports; none when it is missing, fails or takes over 10 s."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        result = subprocess.run(
            [tool, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()]


def allocate_gpus(spec: Spec, gpus: list[str]) -> dict[str, list[str | None]]:
    """node -> one entry per worker: a GPU id, "" for CPU only, None to leave the env alone.

    Each GPU goes to one worker. Nodes that require a GPU are served first, in spec order;
    then nodes that prefer one; a preferring worker left without one runs on the CPU.
    """
    free = list(gpus)
    plan: dict[str, list[str | None]] = {}
    errors = []
    for node in spec.nodes.values():
        if node.device == "gpu":
            if len(free) < node.workers:
                have = ",".join(gpus) if gpus else "none"
                need = f"{node.workers} GPUs (one per worker)" if node.workers > 1 else "a GPU"
                errors.append(
                    f"{spec.path}:{node.line}: node '{node.name}': needs {need} but only "
                    f"{len(free)} of the visible GPUs ({have}) is left "
                    '(set CUDA_VISIBLE_DEVICES or --gpus, or use device = "prefer-gpu")'
                )
                continue
            plan[node.name] = [free.pop(0) for _ in range(node.workers)]
    if errors:
        raise SpecError(errors)
    for node in spec.nodes.values():
        if node.device == "prefer-gpu":
            plan[node.name] = [free.pop(0) if free else "" for _ in range(node.workers)]
        elif node.device == "cpu":
            plan[node.name] = [""] * node.workers
        elif node.device == "":
            plan[node.name] = [None] * node.workers
    return plan
