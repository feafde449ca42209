"""The suite's own guarantees: under CI=true a skipped proof fails; no test waits longer
than the per-test limit lets it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.helpers import ENV, ROOT

SKIPPING = """
import pytest

def test_needs_a_tool():
    pytest.skip("frobnicate is not installed")

def test_by_design():
    pytest.skip("this onnxruntime has a CUDA provider")

def test_runs():
    assert True
"""


def run_pytest(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in ENV.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.loud_skips",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-rA",
            str(tmp_path / "test_skipping.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


def test_under_ci_a_skipped_proof_fails(tmp_path):
    result = run_pytest(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 skipped" in result.stdout
    assert "a proof CI must run was skipped (CI=true): frobnicate is not installed" in (
        result.stdout
    )


def test_elsewhere_a_skip_is_a_skip(tmp_path):
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout


def test_no_inner_timeout_reaches_the_per_test_limit():
    limit = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "timeout"
    ]
    found = []
    for path in (ROOT / "tests").rglob("*.py"):
        if "bench" in path.parts:  # `make bench` runs outside pytest
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "expect(" in line:  # Playwright's timeouts are in milliseconds
                continue
            for match in re.finditer(r"\btimeout(?:=|: float = )(\d+(?:\.\d+)?)", line):
                found.append((float(match.group(1)), f"{path.relative_to(ROOT)}:{number}"))
    assert found  # the pattern still matches how the tests write their timeouts
    too_long = [(seconds, where) for seconds, where in found if seconds >= limit]
    assert not too_long, f"inner timeouts not shorter than the {limit} s per-test limit"
