"""graph: `vflow graph spec.toml`, a DAG of stages run as subprocesses (see vflow-graph(5))."""
