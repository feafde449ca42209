"""The README's stage table, made from the commands themselves (`make docs` writes it).

tests/test_docs.py checks that README.md holds exactly this table, so --help, the man
pages (made from --help by `make man`) and the README cannot drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from vflow_cli.catalogue import all_commands
from vflow_cli.stage import INFO

README = Path(__file__).resolve().parents[2] / "README.md"  # a source checkout's
BEGIN, END = "<!-- stages: made by `make docs` -->", "<!-- /stages -->"
ORDER = {"producer": 0, "processor": 1, "consumer": 2}


def usage(name: str, command: click.Command) -> str:
    ctx = click.Context(command, info_name=f"vflow {name}")
    pieces = [p for p in command.collect_usage_pieces(ctx) if p != "[OPTIONS]"]
    return " ".join([f"vflow {name}", *pieces])


def short_help(command: click.Command) -> str:
    return (command.help or "").strip().split("\n\n")[0].replace("\n", " ")


def table() -> str:
    rows = ["| stage | kind | what it does |", "|---|---|---|"]
    commands = all_commands()
    names = sorted(commands, key=lambda n: (ORDER.get(INFO[n].kind if n in INFO else "", 3), n))
    for name in names:
        command = commands[name]
        kind = INFO[name].kind if name in INFO else "runner"
        cell = usage(name, command).replace("|", "\\|")  # a bare | would end the cell
        rows.append(f"| `{cell}` | {kind} | {short_help(command)} |")
    return "\n".join(rows)


BLOCK = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def section(text: str) -> str | None:
    """The table now in the README (None: the markers are missing)."""
    match = BLOCK.search(text)
    return match.group(1).rstrip("\n") if match else None


def main() -> None:
    text = README.read_text()
    if section(text) is None:
        sys.exit(f"README.md has no {BEGIN} ... {END} block")
    new = BLOCK.sub(lambda m: f"{BEGIN}\n{table()}\n{END}", text, count=1)
    README.write_text(new)
    print("README.md: stage table", "updated" if new != text else "unchanged")


if __name__ == "__main__":
    main()
