"""make bench: every benchmark row beside its peer, all measured in this one run.

Each module here exposes rows() -> list[Row]; this prints them as one table.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from tests.bench.common import Row, print_table


def main() -> None:
    only = sys.argv[1:]
    rows: list[Row] = []
    package = importlib.import_module("tests.bench")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in ("common", "__main__") or (only and info.name not in only):
            continue
        module = importlib.import_module(f"tests.bench.{info.name}")
        print(f"bench: {info.name} ...", file=sys.stderr, flush=True)
        rows.extend(module.rows())
    print_table(rows)


if __name__ == "__main__":
    main()
