"""--help, the man pages and the README say the same thing; the documented examples run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ENV, ROOT, sh
from vflow_cli.catalogue import all_commands
from vflow_cli.cli import cli
from vflow_cli.docgen import man as manpages
from vflow_cli.docgen import readme as docs

COMMANDS = sorted(all_commands())
TRACEBACK = b"Traceback"
MAN = ROOT / "man"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(runner, name):
    command = all_commands()[name]
    assert command.help and command.help.strip(), f"{name} has no docstring"
    first = docs.short_help(command)
    assert first[0].isupper() and first.endswith("."), first
    for flag in ("--help", "-h"):
        result = runner.invoke(cli, [name, flag], prog_name="vflow")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: vflow {name}")
        assert " ".join(first.split()[:4]) in " ".join(result.output.split())


def test_every_stage_module_is_in_the_lazy_index():
    import importlib
    import pkgutil

    import vflow_stages

    from vflow_cli.catalogue import STAGES
    from vflow_cli.stage import REGISTRY

    for module in pkgutil.iter_modules(vflow_stages.__path__):
        importlib.import_module(f"vflow_stages.{module.name}")
    assert set(STAGES) == set(REGISTRY), "add the stage to STAGES in vflow_cli/catalogue.py"
    for name, command in REGISTRY.items():
        assert command.callback.__module__ == f"vflow_stages.{STAGES[name]}", name


def test_a_stage_imports_only_its_own_module():
    probe = (
        "import sys; from vflow_cli.cli import cli; "
        "cli(['int', '0', '0'], prog_name='vflow', standalone_mode=False); "
        "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith('vflow_stages.') "
        "or m in ('cv2', 'numpy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert result.stderr.split() == ["vflow_stages.integers"]


def test_the_readme_table_is_made_from_help():
    assert docs.section((ROOT / "README.md").read_text()) == docs.table(), "run `make docs`"


def test_the_man_pages_are_made_from_help(tmp_path):
    made = {p.name: p.read_text() for p in manpages.write(tmp_path)}
    assert set(made) == {f"vflow-{name}.1" for name in COMMANDS}
    assert {p.name for p in MAN.glob("vflow-*.1")} == set(made), "run `make man`"
    for name, text in made.items():
        assert (MAN / name).read_text() == text, f"man/{name} is out of date: run `make man`"


def test_vflow_1_names_every_stage():
    page = (MAN / "vflow.1").read_text()
    for name in COMMANDS:
        assert re.search(rf"\b{re.escape(name)}\b", page), f"vflow(1) does not mention {name}"


def test_the_readme_first_steps_work_as_written(tmp_path):
    """Each command, then the `# ...` lines after it: what it prints (stdout and stderr),
    where '...' stands for anything and two spaces or more begin a remark."""
    text = (ROOT / "README.md").read_text()
    steps = text.split("## First steps")[1].split("\n## ")[0]
    blocks: list[tuple[str, list[str]]] = []
    for line in steps.splitlines():
        if line.startswith("    vflow "):
            blocks.append((line.strip(), []))
        elif line.startswith("    # ") and blocks:
            blocks[-1][1].append(re.split(r"\s{2,}", line[6:])[0])
    assert len(blocks) >= 4
    for command, shown in blocks:
        result = sh(command + " 2>&1", cwd=tmp_path)
        assert result.returncode == 0, (command, result.stdout)
        printed = result.stdout.decode().splitlines()
        assert len(printed) == len(shown), (command, printed)
        for want, got in zip(shown, printed, strict=True):
            pattern = ".*".join(re.escape(part) for part in want.split("..."))
            assert re.fullmatch(pattern, got), (command, want, got)


def test_every_man_page_renders(tmp_path):
    for page in MAN.glob("*.[15]"):
        result = subprocess.run(
            ["man", "--warnings", "-l", "-Tutf8", str(page)],
            capture_output=True,
            env={**ENV, "MANWIDTH": "80"},
        )
        assert result.returncode == 0, (page.name, result.stderr)
        assert len(result.stdout) > 200, page.name
        assert b"warning" not in result.stderr, (page.name, result.stderr)


def test_the_packet_page_example_is_a_working_stage(tmp_path):
    page = (MAN / "vflow-packet.5").read_text()
    code = page.split("BEGIN EXAMPLE")[1].split("\n", 1)[1].split('.\\" END EXAMPLE')[0]
    script = tmp_path / "invert.py"
    script.write_text(code)
    result = sh(
        f"vflow testcard --size 8x4 --frames 3 | {sys.executable} {script} "
        "| vflow print --kind frame"
    )
    assert result.statuses == [0, 0, 0], result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3 and all('"inverted":true' in line for line in lines)
    # and the pixels really are inverted: compare one frame through vflow's own reader
    from tests.helpers import unpack

    raw = sh("vflow testcard --size 8x4 --frames 1").stdout
    inverted = sh(f"vflow testcard --size 8x4 --frames 1 | {sys.executable} {script}").stdout
    a, b = unpack(raw)[1]["image"], unpack(inverted)[1]["image"]
    assert (a.astype(int) + b == 255).all()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell):
    result = subprocess.run(
        ["vflow"], env={**ENV, "_VFLOW_COMPLETE": f"{shell}_source"}, capture_output=True, text=True
    )
    assert result.returncode == 0 and "_VFLOW_COMPLETE" in result.stdout


def test_bash_completion_completes_stage_names_and_options():
    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {
            **ENV,
            "_VFLOW_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        out = subprocess.run(["vflow"], env=env, capture_output=True, text=True).stdout
        return [item.split(",", 1)[1] for item in out.split()]

    assert "testcard" in complete("vflow te")
    assert "--frames" in complete("vflow testcard --fr")


def test_every_package_is_in_the_wheel():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(path.relative_to(ROOT).parent.parts)
        for path in (ROOT / "vflow_cli").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_the_readme_graph_example_runs_on_a_machine_without_a_display(tmp_path):
    text = (ROOT / "README.md").read_text()
    spec = text.split("## Graphs")[1].split("```toml\n")[1].split("```")[0]
    (tmp_path / "spec.toml").write_text(spec)
    env = {k: v for k, v in ENV.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "vflow_cli", "graph", "spec.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert b"node 'view' (show) failed" in result.stderr and b"optional" in result.stderr
    from tests.stages.test_write import count_frames

    assert count_frames(tmp_path / "out.mkv")[0] == 90


def test_the_stage_page_example_is_a_working_stage(tmp_path):
    page = (MAN / "vflow-stage.7").read_text()
    code = page.split("BEGIN EXAMPLE")[1].split("\n", 1)[1].split('.\\" END EXAMPLE')[0]
    script = tmp_path / "brighten.py"
    script.write_text(code.replace("\\-", "-"))
    help_text = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, env=ENV, timeout=30
    )
    assert help_text.returncode == 0 and b"Brighten every frame by a constant" in help_text.stdout
    result = sh(
        f"vflow testcard --size 8x4 --frames 3 | {sys.executable} {script} --by 60 "
        "| vflow print --kind frame -f brightened"
    )
    assert result.statuses == [0, 0, 0], result.stderr
    assert result.stdout.decode().split() == ['{"brightened":60}'] * 3
    bad = sh(f"vflow testcard --frames 1 | {sys.executable} {script} --by 999 | vflow null")
    assert bad.statuses[1] == 1
    assert b"brighten.py: --by 999 is out of -255..255\n" in bad.stderr


def _readme_stage(tmp_path):
    text = (ROOT / "README.md").read_text()
    code = text.split("## Writing a stage")[1].split("```python\n")[1].split("```")[0]
    script = tmp_path / "brighten_readme.py"
    script.write_text(code)
    return script


def _page_stage(tmp_path):
    page = (MAN / "vflow-stage.7").read_text()
    code = page.split("BEGIN EXAMPLE")[1].split("\n", 1)[1].split('.\\" END EXAMPLE')[0]
    script = tmp_path / "brighten_page.py"
    script.write_text(code.replace("\\-", "-"))
    return script


@pytest.mark.parametrize("where", [_readme_stage, _page_stage], ids=["readme", "stage.7"])
@pytest.mark.parametrize("compress", ["", "| vflow jpeg --quality 100 "], ids=["raw", "jpeg"])
def test_the_documented_stages_brighten_raw_and_compressed_frames(tmp_path, where, compress):
    """Both documented example stages run on raw frames and on frames compressed by
    `vflow jpeg` (they once died on the latter: 'Encoded' object has no attribute 'astype')."""
    from tests.helpers import unpack

    script = where(tmp_path)
    source = "vflow testcard --size 32x16 --frames 3 "
    result = sh(f"{source}{compress}| {sys.executable} {script} --by 60")
    assert result.statuses == ([0, 0] if not compress else [0, 0, 0]), result.stderr
    assert TRACEBACK not in result.stderr and b"error" not in result.stderr
    before = [p["image"] for p in unpack(sh(f"{source}{compress}| vflow unjpeg").stdout)[1:]]
    after = [p["image"] for p in unpack(result.stdout)[1:]]
    assert len(after) == 3
    for a, b in zip(before, after, strict=True):
        assert b.shape == a.shape and b.dtype == a.dtype
        assert (b.astype(int) == (a.astype(int) + 60).clip(0, 255)).all()
