"""head, every, rate, identity, null: stages that decide which packets go on."""

from vflow_stages.every import every
from vflow_stages.head import head
from vflow_stages.rate import rate

from tests.helpers import data, frame, pack, sh, unpack
from vflow_cli.cli import cli

STREAM = {"kind": "stream", "source": "t"}


def seqs(packets):
    return [p.get("seq") for p in packets]


def test_head_keeps_the_first_n_and_the_announcement():
    out = list(head(iter([STREAM, *[data(i) for i in range(10)]]), n=3, kinds=()))
    assert seqs(out) == [None, 0, 1, 2]
    assert list(head(iter([data(0)]), n=0, kinds=())) == []


def test_head_counts_only_the_chosen_kind():
    packets = [frame(0), data(1), frame(2), data(3), frame(4)]
    assert seqs(head(iter(packets), n=2, kinds=("frame",))) == [0, 1, 2]


def test_every_keeps_one_in_n():
    out = every(iter([STREAM, *[frame(i) for i in range(7)]]), n=3, kinds=())
    assert seqs(out) == [None, 0, 3, 6]


def test_rate_thins_by_media_time():
    packets = [frame(i) for i in range(30)]  # t = i / 30: one second at 30 fps
    out = list(rate(iter(packets), fps=10, kinds=(), clock="media"))
    assert seqs(out) == list(range(0, 30, 3))


def test_rate_starts_again_when_the_timeline_restarts():
    packets = [frame(i) for i in range(6)] + [frame(i) for i in range(6)]  # a --loop
    out = list(rate(iter(packets), fps=15, kinds=(), clock="media"))
    assert seqs(out) == [0, 2, 4, 0, 2, 4]


def test_rate_by_arrival_through_a_real_pipe():
    # 20 packets a second for about a second, thinned to 5 a second by arrival time
    result = sh("vflow int 1 20 --interval 0.05 | vflow rate 5 --clock arrival | vflow print")
    assert result.statuses == [0, 0, 0]
    assert 4 <= len(result.stdout.splitlines()) <= 7


def test_cli_round_trips(runner):
    stream = pack([STREAM, *[frame(i) for i in range(6)]])
    result = runner.invoke(cli, ["every", "2"], input=stream)
    assert result.exit_code == 0, result.output
    assert seqs(unpack(result.stdout_bytes)) == [None, 0, 2, 4]
    result = runner.invoke(cli, ["identity"], input=stream)
    assert seqs(unpack(result.stdout_bytes)) == [None, 0, 1, 2, 3, 4, 5]


def test_identity_passes_frames_byte_for_byte_through_real_pipes(tmp_path):
    card = tmp_path / "card.vflow"
    assert sh(f"vflow testcard --size 640x480 --frames 5 --animated > {card}").statuses == [0]
    out = tmp_path / "out.vflow"
    result = sh(f"cat {card} | vflow identity | vflow identity | vflow every 1 > {out}")
    assert result.statuses == [0, 0, 0, 0]
    assert out.read_bytes() == card.read_bytes()
    copy = tmp_path / "copy.vflow"  # file to file: no pipe on either side
    assert sh(f"vflow identity < {card} > {copy}").statuses == [0]
    assert copy.read_bytes() == card.read_bytes()


def test_frames_dropped_by_a_stage_that_never_reads_pixels_are_skipped(tmp_path):
    card = tmp_path / "card.vflow"
    sh(f"vflow testcard --size hd --frames 9 --animated > {card}")
    result = sh(f"vflow every 4 < {card} | vflow print --kind frame -f seq")
    assert result.statuses == [0, 0]
    assert result.stdout.decode().split() == ['{"seq":0}', '{"seq":4}', '{"seq":8}']
    kept = unpack(sh(f"vflow every 4 < {card}").stdout)
    original = [p for p in unpack(card.read_bytes()) if p.get("seq") in (0, 4, 8)]
    for a, b in zip(kept[1:], original, strict=True):
        assert (a["image"] == b["image"]).all()


def test_null_discards_everything():
    result = sh("vflow testcard --size small --frames 5 | vflow null")
    assert result.statuses == [0, 0] and result.stdout == b"" and result.stderr == b""
