"""python -m vflow_cli: the same as the `vflow` command (graph nodes run this way)."""

from vflow_cli.cli import main

if __name__ == "__main__":
    main()
