"""Stages from other packages: a tiny package, installed with pip into a virtual environment
of its own, adds `vflow hello`: listed in --help, run in a shell pipe and in a graph, with
the same options, errors and signals as a built-in stage."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ENV

PLUGIN = textwrap.dedent(
    '''
    """hello: a stage from another package."""
    import click

    from vflow_cli.stage import StageError, processor


    @processor(pixels=False)
    @click.option("--greeting", default="hello", show_default=True, help="What to say.")
    def hello(packets, greeting):
        """Add a greeting to every packet."""
        for packet in packets:
            if packet.get("value") == 13:
                raise StageError("13 is unlucky; say something else")
            packet["greeting"] = f"{greeting} {packet.get('seq')}"
            yield packet
    '''
)


def _wheel(folder: Path) -> Path:
    """vflow_hello-1.0: one module and an entry point in the group vflow.stages."""
    files = {
        "vflow_hello.py": PLUGIN,
        "vflow_hello-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: vflow-hello\n"
        "Version: 1.0\n",
        "vflow_hello-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        "vflow_hello-1.0.dist-info/entry_points.txt": "[vflow.stages]\nhello = vflow_hello\n",
    }
    path = folder / "vflow_hello-1.0-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            data = text.encode()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append("vflow_hello-1.0.dist-info/RECORD,,")
        wheel.writestr("vflow_hello-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new virtual environment that sees vflow, with the plugin pip-installed into it."""
    folder = tmp_path_factory.mktemp("plugin")
    root = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]  # vflow and its dependencies, as installed here
    Path(site, "vflow-under-test.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(_wheel(folder))],
        check=True,
        env=ENV,
    )  # fmt: skip
    return python


def sh(python: Path, script: str, cwd: Path) -> subprocess.CompletedProcess:
    v = f"{python} -m vflow_cli"
    return subprocess.run(
        ["bash", "-c", "set -o pipefail; " + script.replace("vflow ", v + " ")],
        capture_output=True,
        cwd=cwd,
        env=ENV,
        timeout=60,
    )


def test_an_installed_package_adds_a_stage(venv, tmp_path):
    listed = sh(venv, "vflow --help", tmp_path)
    assert listed.returncode == 0 and b"hello" in listed.stdout
    assert b"Add a greeting to every packet." in sh(venv, "vflow hello --help", tmp_path).stdout
    piped = sh(
        venv, "vflow int 0 2 | vflow hello --greeting hi | vflow print -f greeting", tmp_path
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode().splitlines() == [
        '{"greeting":"hi 0"}', '{"greeting":"hi 1"}', '{"greeting":"hi 2"}',
    ]  # fmt: skip


def test_a_package_stage_errors_like_a_built_in_one(venv, tmp_path):
    result = sh(venv, "vflow int 10 20 | vflow hello | vflow null", tmp_path)
    assert result.returncode == 1
    assert b"vflow hello: 13 is unlucky; say something else\n" in result.stderr
    assert b"vflow null: input ended without an end of stream" in result.stderr


def test_a_package_stage_in_a_graph(venv, tmp_path):
    (tmp_path / "spec.toml").write_text(
        '[nodes.src]\nrun = ["int", "0", "9"]\n'
        '[nodes.hi]\nrun = ["hello", "--greeting", "hey"]\nfrom = ["src"]\nworkers = 2\n'
        '[nodes.out]\nrun = ["print", "-f", "greeting"]\nfrom = ["hi"]\n'
    )
    result = sh(venv, "vflow graph spec.toml", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [f'{{"greeting":"hey {i}"}}' for i in range(10)]
