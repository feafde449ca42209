"""graph.tables: one [nodes.NAME] table checked and made into a Node (vflow-graph(5))."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vflow_cli import catalogue
from vflow_cli.graph.model import DEVICES, JOINS, KINDS, NODE_KEYS, UNMATCHED, Node

SERVICES = ("worker",)  # runners a node may run: they work beside the graph's pipes


class Runnable:
    """The stages and services a node may run, by name: each is imported only when a spec
    names it (`--check` of a three-node spec imports three stages, not every one)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.command(name) is not None

    def __iter__(self) -> Iterator[str]:
        runners = set(catalogue.RUNNERS) - set(SERVICES)
        return iter(name for name in catalogue.names() if name not in runners)

    def command(self, name: str) -> Any:
        if name in catalogue.RUNNERS and name not in SERVICES:
            return None
        return catalogue.command(name)

    def __getitem__(self, name: str) -> Any:
        found = self.command(name)
        if found is None:
            raise KeyError(name)
        return found


class Infos:
    """Stage name -> StageInfo, for the stages a spec names (None for a service)."""

    def get(self, name: str) -> Any:
        return catalogue.stage_info(name)


def registry() -> tuple[Runnable, Infos]:
    """(name -> click command, name -> StageInfo) of every stage a node may run."""
    return Runnable(), Infos()


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def node_from_table(name, table, line, lines, registry, infos, err) -> Node | None:
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
    stateful = False
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
        checked = _stage_of(name, argv_in, kind, registry, infos, err, at)
        if checked is None:
            return None
        kind, stateful, failed = checked
        bad = bad or failed
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
    node.stateful = how == "run" and stateful
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
    for key, check in SETTINGS.items():
        if key in table:
            value, problem = check(key, table[key])
            if problem:
                err(at(key), f"node '{name}': {problem}")
                bad = True
            else:
                setattr(node, key, value)
    if "join" in table and len(inputs) < 2:
        err(at("join"), f"node '{name}': `join` needs two inputs or more in `from`")
        bad = True
    if node.workers > 1 and kind == "producer":
        err(
            at("workers"),
            f"node '{name}': a producer cannot have workers (each copy would "
            "produce the whole stream)",
        )
        bad = True
    elif node.workers > 1 and node.stateful:
        err(
            at("workers"),
            f"node '{name}': '{label.split()[0]}' keeps state across packets (each worker "
            "would see only some of them and keep its own); run it once, without workers",
        )
        bad = True
    return None if bad else node


def _stage_of(name, argv_in, kind, registry, infos, err, at) -> tuple[str, bool, bool] | None:
    """A `run` node's stage: (its kind, whether it keeps state, whether a problem was
    reported); None when the node cannot be made at all."""
    bad = False
    stateful = False
    stage = argv_in[0]
    if stage == "graph":
        err(at("run"), f"node '{name}': a graph cannot run `vflow graph` as a node")
        return None
    if stage not in registry:
        near = [s for s in sorted(registry) if s.startswith(stage[:2])]
        hint = f" (did you mean {', '.join(near)}?)" if near else " (see `vflow --help`)"
        err(at("run"), f"node '{name}': unknown stage '{stage}'{hint}")
        return None
    info = infos.get(stage)
    # a `vflow worker` node reads and writes NATS, not pipes: a source of nothing
    real = info.kind if info is not None else "producer" if stage in SERVICES else "processor"
    if info is not None and info.passes is not None:  # mot --pass: a processor
        import contextlib

        import click

        with contextlib.suppress(click.ClickException):  # reported below
            real = info.kind_for(info.parse(argv_in[1:]))
    chained = None
    if stage == "chain":  # what a chain is depends on its first and last stages
        real, chained = _chain_kind(argv_in[1:], real)
    if kind is not None and kind != real:
        err(at("kind"), f"node '{name}': '{stage}' is a {real}, not a {kind}")
        bad = True
    kind = real
    problem = _check_arguments(registry[stage], stage, argv_in[1:]) or chained
    if problem is None and info is not None:
        stateful = info.keeps_state(info.parse(argv_in[1:]))
    if problem:
        err(at("run"), f"node '{name}': {problem}")
        bad = True
    return kind, stateful, bad


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], tuple[Any, str | None]]:
    def check(key: str, value: Any) -> tuple[Any, str | None]:
        return value, None if value in choices else f"{key} must be one of {', '.join(choices)}"

    return check


def _whole(key: str, value: Any) -> tuple[Any, str | None]:
    ok = type(value) is int and value >= 1
    return value, None if ok else f"{key} must be a whole number >= 1"


def _flag(key: str, value: Any) -> tuple[Any, str | None]:
    return value, None if type(value) is bool else f"{key} must be true or false"


def _env(key: str, value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, dict) or not all(
        isinstance(v, (str, int, float)) for v in value.values()
    ):
        return None, 'env must be a table of strings, e.g. env = { K = "v" }'
    return {str(k): str(v) for k, v in value.items()}, None


def _path(key: str, value: Any) -> tuple[Any, str | None]:
    return value, None if isinstance(value, str) and value else f"{key} must be a path"


# the settings of a node checked each on its own: key -> check(key, value) -> (what the node
# takes, the problem); how keys bear on each other is checked in node_from_table
SETTINGS: dict[str, Callable[[str, Any], tuple[Any, str | None]]] = {
    "join": _choice(JOINS),
    "unmatched": _choice(UNMATCHED),
    "device": _choice(DEVICES),
    "workers": _whole,
    "window": _whole,
    "optional": _flag,
    "env": _env,
    "cwd": _path,
    "stdout": _path,
}


def check_program(node: Node, table: dict[str, Any], shown: str) -> str | None:
    """A `command` must be found on PATH, a `python` script where the node will run."""

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


def _chain_kind(args: list[str], kind: str) -> tuple[str, str | None]:
    """(the chain's kind, or `kind`; its problem, if any)."""
    import click

    from vflow_cli import chain

    try:
        return chain.kind_of(chain.members(chain.split(args))), None
    except click.ClickException as exc:
        return kind, f"vflow chain: {exc.format_message()}"


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
