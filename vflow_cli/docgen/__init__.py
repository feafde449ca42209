"""docgen: the documentation made from the commands themselves, so that --help, the man pages
and the README cannot disagree (`make man`, `make docs`; tests/test_docs.py checks them).

    man.py      man/vflow-STAGE.1 from each stage's --help (click-man)
    readme.py   the README's stage table from each stage's first help line

They work in a source checkout (they write into it), not from an installed wheel.
"""
