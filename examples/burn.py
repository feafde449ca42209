"""burn: a CPU-heavy processor written as a plain Python script (a stage of its own).

Spends --work units of CPU on each packet and records the result in its "burn" field; it
gives `workers = N` something worth spreading:

    [nodes.heavy]
    python = ["burn.py", "--work", "20000"]
    cwd = "."          # relative paths run from the spec's directory
    workers = 2
    from = ["src"]
"""

import click

from vflow_cli.stage import main, processor


@processor(pixels=False)
@click.option("--work", type=int, default=20000, show_default=True, help="CPU units a packet.")
def burn(packets, work):
    """Spend CPU on every packet; record the result in its "burn" field."""
    for packet in packets:
        x = int(packet.get("seq", 0) or 0) & 0xFFFF
        for i in range(work):
            x = (x * 1103515245 + 12345 + i) & 0x7FFFFFFF
        packet["burn"] = x
        yield packet


if __name__ == "__main__":
    main()
