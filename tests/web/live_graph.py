"""Run a graph spec with its live page, as `vflow graph --serve` is to: the runner's own
status (graph.stats) through serve_graph. Prints the page's address, runs the graph, keeps
the page up for HOLD seconds after the end so that the final states can be seen.

    python -m tests.web.live_graph SPEC HOLD
"""

from __future__ import annotations

import sys
import time

from vflow_cli.graph.dot import to_dot
from vflow_cli.graph.plan import make_plan
from vflow_cli.graph.run import Graph
from vflow_cli.graph.spec import load
from vflow_cli.web.graph_page import serve_graph


def main() -> None:
    spec, hold = sys.argv[1], float(sys.argv[2])
    plan = make_plan(load(spec), relay_all=True)  # every edge relayed: every count seen
    runner = Graph(plan)
    page = serve_graph(runner.stats.snapshot, to_dot(plan), port=0, interval=0.25)
    print(page.url, flush=True)
    code = runner.run()
    page.refresh()
    time.sleep(hold)
    page.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
