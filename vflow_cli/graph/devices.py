"""graph.devices: which GPU each worker gets (CUDA_VISIBLE_DEVICES), decided before anything
starts. Nothing here touches a device: the runner sets each worker's environment."""

from __future__ import annotations

import os
import shutil
import subprocess

from vflow_cli.graph.spec import Spec, SpecError


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


def allocate_gpus(
    spec: Spec, gpus: list[str], *, strict: bool = True
) -> dict[str, list[str | None]]:
    """node -> one entry per worker: a GPU id, "" for CPU only, None to leave the env alone.

    Each GPU goes to one worker. Nodes that require a GPU are served first, in spec order;
    then nodes that prefer one; a preferring worker left without one runs on the CPU.
    A node that requires more GPUs than are left is a SpecError; with strict=False (a
    drawing, which starts nothing) its workers get "?" instead.
    """
    free = list(gpus)
    plan: dict[str, list[str | None]] = {}
    errors = []
    for node in spec.nodes.values():
        if node.device == "gpu":
            if len(free) < node.workers:
                if not strict:
                    plan[node.name] = [free.pop(0) if free else "?" for _ in range(node.workers)]
                    continue
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
