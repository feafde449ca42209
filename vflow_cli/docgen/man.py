"""Write man/vflow-STAGE.1 from each stage's --help (click-man); `make man` runs this.

vflow.1, vflow-packet.5 and vflow-graph.5 are written by hand and left alone.
tests/test_docs.py runs the same function into a scratch folder and compares. Run from a
source checkout: `python -m vflow_cli.docgen.man man`.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

from click_man.core import write_man_pages

from vflow_cli import __version__
from vflow_cli.catalogue import all_commands
from vflow_cli.cli import cli

DATE = "2026-11-22"  # the release date of this version: pages change only with a release


def write(target: Path) -> list[Path]:
    """Write every stage's page into target; return the files written."""
    cli.commands.update(all_commands())  # click-man walks .commands: load them all
    with tempfile.TemporaryDirectory() as scratch:
        with warnings.catch_warnings():  # click-man calls a helper click 8.2 deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            write_man_pages("vflow", cli, version=__version__, target_dir=scratch, date=DATE)
        pages = sorted(Path(scratch).glob("vflow-*.1"))
        written = []
        for page in pages:
            out = target / page.name
            out.write_text(page.read_text())
            written.append(out)
    return written


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "man")
    stale = {p.name for p in target.glob("vflow-*.1")}
    written = write(target)
    for name in stale - {p.name for p in written}:
        (target / name).unlink()  # a stage that is gone
    print(f"{target}/: {len(written)} stage pages")


if __name__ == "__main__":
    main()
