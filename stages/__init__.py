"""vflow stages: one module per stage (or per family of stages), imported by vflow_cli.cli."""
