"""`make mutate`'s summary: per module, the mutants mutmut made and how many the tests killed.

    python -m tests.mutation_table          after `mutmut run`

A mutant that timed out counts as killed (the tests noticed: they hung); one that no test
reached ("no tests") counts as a survivor. Survivors are listed by name; `mutmut show NAME`
prints one's diff.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout"}
NAME = re.compile(r"^\s*(\S+?)\.x[_ǁ]\S*: (.+)$")


def main() -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    listing = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in listing.splitlines():
        match = NAME.match(line)
        if not match:
            continue
        module, status = match.group(1), match.group(2).strip()
        if status == "not checked":
            continue
        statuses[module][status] += 1
        if status not in KILLED:
            survivors[module].append(f"{line.strip().split(':')[0]} ({status})")
    print(f"{'module':32} {'mutants':>8} {'killed':>8} {'%':>6}")
    for module in sorted(statuses):
        total = sum(statuses[module].values())
        killed = sum(statuses[module][s] for s in KILLED)
        print(f"{module:32} {total:8} {killed:8} {100 * killed / total:6.1f}")
    for module in sorted(survivors):
        print(f"\n{module}: {len(survivors[module])} not killed")
        for name in survivors[module]:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
