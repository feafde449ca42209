"""catalogue: which stages and commands exist, and loading one by name. No click context.

    built in    STAGES: stage name -> module under stages/ (vflow_stages.MODULE)
    runners     RUNNERS: commands that run stages rather than being one (graph, worker, nats)
    packages    entry points in the group `vflow.stages` (name = the stage's name, value = the
                module that defines it, or module:function), imported only when NAME runs

A stage's module is imported only when that stage is asked for: `vflow int 0 9` imports
stages/integers.py and no other stage (start-up is paid by every process of every pipeline
and every graph node), and `vflow graph --check` imports only the stages its spec names.
The click group (cli.py), the graph, the network worker and vflow_cli.testing all ask here.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib import metadata

    import click

    from vflow_cli.stage import StageInfo

PLUGIN_GROUP = "vflow.stages"

# stage name -> module under stages/ (tests/test_docs.py checks this against the modules)
STAGES = {
    "annotate": "annotate",
    "blur": "blur",
    "camera": "camera",
    "chain": "chain",
    "clip": "clip",
    "convert": "convert",
    "count": "aggregate",
    "crop": "crop",
    "detect": "detect",
    "every": "every",
    "flip": "flip",
    "fps": "fps",
    "gray": "gray",
    "head": "head",
    "heatmap": "heatmap",
    "identity": "identity",
    "images": "images",
    "int": "integers",
    "jpeg": "jpeg",
    "line": "line",
    "max": "aggregate",
    "mean": "aggregate",
    "min": "aggregate",
    "mot": "mot",
    "mqtt": "mqtt",
    "mul": "aggregate",
    "null": "null",
    "post": "post",
    "print": "print",
    "rate": "rate",
    "read": "read",
    "recv": "recv",
    "resize": "resize",
    "rotate": "rotate",
    "save": "save",
    "select": "select",
    "send": "send",
    "serve": "serve",
    "serve-pass": "serve",
    "show": "show",
    "stamp": "stamp",
    "sum": "aggregate",
    "testcard": "testcard",
    "tile": "tile",
    "track": "track",
    "unjpeg": "jpeg",
    "write": "write",
    "zone": "zone",
}
# commands that run stages: name -> (module, attribute)
RUNNERS = {
    "graph": ("vflow_cli.graph.command", "graph"),
    "nats": ("vflow_cli.net.command", "nats"),
    "worker": ("vflow_cli.net.worker", "worker"),
}


@functools.cache
def plugins() -> dict[str, metadata.EntryPoint]:
    """Stage name -> entry point, for the installed packages that add stages (not imported).
    A name a built-in stage already has stays the built-in's."""
    from importlib import metadata  # 40 ms: only when a name is not built in

    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=PLUGIN_GROUP):
        if entry.name not in STAGES and entry.name not in RUNNERS:
            found.setdefault(entry.name, entry)
    return found


def names() -> list[str]:
    """Every stage and command name, built in or from a package (nothing imported)."""
    return sorted({*STAGES, *RUNNERS, *plugins()})


def command(name: str) -> click.Command | None:
    """The click command NAME (its module imported now), or None if there is none."""
    from vflow_cli.stage import REGISTRY

    if name in STAGES:
        importlib.import_module(f"vflow_stages.{STAGES[name]}")
        return REGISTRY.get(name)
    if name in RUNNERS:
        module, attribute = RUNNERS[name]
        found: Any = getattr(importlib.import_module(module), attribute)
        return found
    entry = plugins().get(name)
    return _load_plugin(name, entry) if entry is not None else None


def stage_info(name: str) -> StageInfo | None:
    """What vflow knows about the stage NAME (built in or from a package), importing it;
    None for a runner or a name nothing defines."""
    from vflow_cli.stage import INFO

    if name in RUNNERS or command(name) is None:
        return None
    return INFO.get(name)


def all_commands() -> dict[str, click.Command]:
    """Every command, each module imported (for documentation and tests)."""
    commands = {name: command(name) for name in names()}
    return {name: found for name, found in commands.items() if found is not None}


def _load_plugin(name: str, entry: metadata.EntryPoint) -> click.Command | None:
    """Import a package's stage; a plugin that fails to load is reported, not fatal to vflow."""
    from vflow_cli.stage import REGISTRY

    try:
        entry.load()
    except Exception as exc:
        print(
            f"vflow: the stage {name!r} of {entry.value} failed to load: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return None
    found = REGISTRY.get(name)
    if found is None:
        print(
            f"vflow: {entry.value} declares the stage {name!r} but defines no stage of that "
            "name (decorate a function with @processor etc., or name=...)",
            file=sys.stderr,
        )
    return found
