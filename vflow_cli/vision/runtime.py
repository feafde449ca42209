"""runtime: an ONNX Runtime session for a model file: threads, CPU or CUDA, one-line errors.

Any ONNX model vflow runs (the YOLOX detector, a face model) is opened here, so every
model stage has the same --threads and --device behaviour and the same error lines.
"""

from __future__ import annotations

import os
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError

DEVICES = ("cpu", "cuda")


def parse_device(text: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 0); 'cuda' or 'cuda:N' -> ('cuda', N). ValueError if neither."""
    kind, _, number = text.strip().lower().partition(":")
    if kind == "cpu" and not number:
        return "cpu", 0
    if kind == "cuda" and (not number or number.isdigit()):
        return "cuda", int(number or 0)
    raise ValueError(f"{text!r} is not cpu, cuda or cuda:N")


def default_threads() -> int:
    """The cores this process may use (its CPU affinity, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def open_session(path: str, *, threads: int, device: str, expected: str) -> Any:
    """An onnxruntime.InferenceSession for the model file at `path`.

    threads: intra-op threads (0: one per available core). device: 'cpu', 'cuda' or
    'cuda:N' (N counts the GPUs CUDA_VISIBLE_DEVICES leaves visible); without a usable CUDA
    provider the model runs on the CPU, with one warning. `expected` says what the model
    should be, for the error line when the file is missing or is not a model."""
    import onnxruntime as ort

    if not os.path.exists(path):
        raise StageError(f"{path}: no such file; expected {expected}")
    if os.path.isdir(path):
        raise StageError(f"{path}: is a directory; expected {expected}")
    kind, number = parse_device(device)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings are C++ log lines
    # no busy-waiting between runs: in a pipeline the decoder and the other stages need
    # those cores while this stage waits for its next frame
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = ["CPUExecutionProvider"]
    if kind == "cuda":
        providers = _cuda_providers(ort, number)
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/...: one line each
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"{path}: cannot load the model ({_short(reason)}); expected {expected}"
        ) from None
    cuda_wanted = kind == "cuda" and "CUDAExecutionProvider" in str(providers)
    if cuda_wanted and "CUDAExecutionProvider" not in session.get_providers():
        log.warning("the CUDA provider did not start (CUDA libraries missing?); running on the CPU")
    return session


def _cuda_providers(ort: Any, number: int) -> list[Any]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        log.warning(
            "--device cuda: CUDA_VISIBLE_DEVICES=%r hides every GPU; running on the CPU", visible
        )
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        log.warning(
            "--device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu "
            "in place of onnxruntime); running on the CPU"
        )
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": number}), "CPUExecutionProvider"]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
