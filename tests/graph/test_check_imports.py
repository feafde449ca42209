"""`vflow graph --check` imports the stages its spec names, not every stage there is."""

from __future__ import annotations

import subprocess
import sys


def test_checking_a_spec_imports_only_the_stages_it_names(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[nodes.src]\nrun = ["int", "0", "3"]\n'
        '[nodes.total]\nrun = ["sum"]\nfrom = ["src"]\n'
        '[nodes.out]\nrun = ["print"]\nfrom = ["total"]\n'
    )
    probe = (
        "import sys\n"
        "from vflow_cli.cli import cli\n"
        f"try:\n    cli(['graph', '--check', {str(spec)!r}], prog_name='vflow')\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('vflow_stages.'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "3 nodes, ok" in done.stderr
    # int and sum live in their modules; print in its own: nothing else was imported
    assert done.stdout.split() == [
        "vflow_stages.aggregate",
        "vflow_stages.integers",
        "vflow_stages.print",
    ]
