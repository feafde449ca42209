"""graph.model: what a graph spec is once loaded: its nodes, their settings, its errors."""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_KEYS = (
    *("run", "command", "python", "from", "join", "unmatched", "queue", "workers", "window"),
    *("device", "env", "cwd", "stdout", "kind", "optional", "group"),
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
    optional: bool = False  # its failure is reported, but stops nothing (a viewer)
    stateful: bool = False  # a stage that keeps state across packets: never split
    readers: list[str] = field(default_factory=list)  # filled in by validation
    members: list[str] = field(default_factory=list)  # a group: its nodes (graph.groups)


@dataclass
class Spec:
    path: str
    nodes: dict[str, Node]  # in the order of the file
    on_failure: str = "stop"
    grace: float = DEFAULT_GRACE
