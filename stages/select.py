"""select: keep the packets for which an expression over their fields is true. Streaming."""

from __future__ import annotations

from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, StageError, processor


@processor(pixels=False)
@click.argument("expr", metavar="EXPR")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    default=("frame",),
    show_default=True,
    metavar="KIND",
    help="Judge packets of this kind (repeatable); packets of other kinds pass unchanged.",
)
def select(packets: Iterator[Packet], expr: str, kinds: tuple[str, ...]) -> Iterator[Packet]:
    """Keep the packets for which EXPR is true; others of other kinds pass through.

    EXPR is a Python expression over the packet's fields, run by vflow's own small
    interpreter, never by eval: field names (t, seq, frame, objects, lines, ...), a.b and
    a["b"] for a key of a map or an index of a list, numbers and strings, == != < <= > >=,
    in, and, or, not, + - * / // %, x if c else y, [lists], generator expressions, and the
    functions len, any, all, min, max, abs, sum and round. Nothing else: no imports, no
    lambdas, no names or fields that start with _. A packet that lacks a field the
    expression needs (or has one of the wrong type) is dropped, whatever else the
    expression says; `objects` of a frame without any is []. `in` is a Python keyword, so
    a count named in is lines.door["in"]. An expression that is refused stops the stage
    with one line, before it reads anything.

    \b
      vflow read walk.mp4 | vflow detect | vflow select 'len(objects) >= 8' | vflow save busy/
      ... | vflow select 't >= 60 and t < 120' | vflow write minute2.mp4
      ... | vflow select 'frame % 10 == 0' | vflow tile 5x2 | vflow save sheet/
      ... | vflow select 'any(o.label == "car" and o.score > 0.8 for o in objects)'
    """
    from vflow_cli.expr import Expression, Refused
    from vflow_cli.images import settle

    try:
        test = Expression(expr).test
    except Refused as exc:  # one line, before any input is read
        raise StageError(f"refused {expr[:80]!r}: {exc}") from None
    judged = frozenset(kinds)
    for packet in packets:
        if packet.get("kind") not in judged or test(packet):
            yield packet
        else:
            settle(packet)  # its image is skipped in the input, not read
