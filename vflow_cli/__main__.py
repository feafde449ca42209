"""The `vflow` command, and `python -m vflow_cli` (graph nodes run this way).

Ctrl-C while Python is still loading vflow is a stop like any other (exit 130, quietly),
never a traceback from the middle of an import: the handler goes in before anything heavy
is imported, and the CLI's and the runner's own take over from it.
"""

import signal


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(130)  # status.Exit.INTERRUPTED (not imported: this must load at once)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
        signal.signal(signal.SIGINT, _stop)
    from vflow_cli.cli import main as run

    run()


if __name__ == "__main__":
    main()
