"""A pytest plugin: under CI=true a skipped proof is a failure.

On a developer's machine a test that needs root, ffmpeg, Xvfb, chromium or network
namespaces skips when they are missing, and says why. In CI that would hide a proof that
never ran: there, each such skip fails the test with its reason. Only the skips listed in
MAY_SKIP (a test that cannot apply to this machine by design) stay skips.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

MAY_SKIP = ("this onnxruntime has a CUDA provider",)


def ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    outcome = yield
    report = outcome.get_result()
    if not (ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if any(allowed in reason for allowed in MAY_SKIP):
        return
    report.outcome = "failed"
    report.longrepr = f"a proof CI must run was skipped (CI=true): {reason}"
