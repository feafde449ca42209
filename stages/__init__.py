"""vflow stages: one module per stage (or per family of stages), imported by vflow_cli.cli.

The folder is installed as the package `vflow_stages`. Imported under its folder's name as
well, every stage would be registered twice (two modules, two sets of globals).
"""

if __name__ != "vflow_stages":
    raise ImportError(f"import the stages as vflow_stages, not as {__name__!r}")
