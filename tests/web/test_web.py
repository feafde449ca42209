"""The pieces of vflow_cli/web on their own: Prometheus text, JSON, tokens, feeds, the
broadcaster."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from tests.web.util import parse_metrics
from vflow_cli.runner import StageError
from vflow_cli.web import metrics
from vflow_cli.web.auth import read_token
from vflow_cli.web.events import Feed, to_json
from vflow_cli.web.mjpeg import Broadcaster, Raw


def test_prometheus_text_escapes_and_parses():
    family = metrics.gauge("vflow_test_value", "Help with a \\ and a\nline break.")
    family.add(1.5, name='a "quoted"\nname\\x').add(math.nan, name="nan").add(math.inf, name="inf")
    family.add(None, name="unobservable")
    empty = metrics.counter("vflow_test_nothing_total", "No samples: left out.")
    text = metrics.render([family, empty]).decode()
    assert "vflow_test_nothing_total" not in text and "unobservable" not in text
    values = parse_metrics(text)
    assert values['vflow_test_value{name="a "quoted"\nname\\x"}'] == 1.5
    assert math.isnan(values['vflow_test_value{name="nan"}'])
    assert values['vflow_test_value{name="inf"}'] == math.inf


def test_process_numbers_are_there():
    values = parse_metrics(metrics.render(metrics.process_families()).decode())
    assert values["process_resident_memory_bytes"] > 1e6
    assert values["process_start_time_seconds"] == pytest.approx(time.time(), abs=3600)
    assert values["process_open_fds"] >= 3


def test_json_of_packets_is_strict():
    packet = {
        "kind": "frame",
        "image": np.zeros((2, 3, 3), np.uint8),
        "score": math.nan,
        1: b"raw",
        "boxes": [(1, 2.5), {"x": np.float32(0.5)}],
    }
    text = to_json(packet).decode()
    assert "NaN" not in text
    import json

    back = json.loads(text)
    assert back["image"] == {"format": "raw", "dtype": "uint8", "shape": [2, 3, 3]}
    assert back["score"] is None and back["1"] == {"bytes": 3}
    assert back["boxes"] == [[1, 2.5], {"x": 0.5}]


def test_tokens(tmp_path):
    assert read_token(None, None) is None
    assert read_token(" abc ", None) == "abc"
    path = tmp_path / "t"
    path.write_text("from-file\nsecond line ignored\n")
    assert read_token(None, str(path)) == "from-file"
    with pytest.raises(StageError, match="not both"):
        read_token("a", str(path))
    path.write_text("\n")
    with pytest.raises(StageError, match="empty"):
        read_token(None, str(path))
    with pytest.raises(StageError, match="spaces"):
        read_token("two words", None)


def test_a_feed_encodes_each_version_once_and_readers_skip():
    calls = []
    feed = Feed(lambda v: calls.append(v) or str(v).encode())
    assert feed.latest() is None and feed.wait(0, 0.01) is None
    for i in range(5):
        feed.publish(i)
    results = []
    readers = [threading.Thread(target=lambda: results.append(feed.wait(0, 1))) for _ in range(8)]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    assert results == [(5, b"4")] * 8  # the newest only: versions 1 to 4 were skipped
    assert calls == [4]  # one encode for eight readers


def _raw(n: int) -> Raw:
    picture = np.full((48, 64, 3), n * 20 % 256, np.uint8)
    return Raw(n, picture, None, n - 1, 1000.0 + n)


def test_the_broadcaster_encodes_once_for_all_viewers_and_only_when_watched():
    b = Broadcaster(quality=80)
    try:
        assert not b.wanted()
        with b.watching():
            assert b.wanted()
            b.seen = 1
            b.offer(_raw(1))
            got = [b.next(0, 5) for _ in range(10)]
            assert all(j is got[0] for j in got) and got[0].data[:2] == b"\xff\xd8"
            assert b.encoded == 1 and got[0].seq == 0
            assert b.next(1, 0.05) is None  # nothing newer
        assert not b.wanted()
        b.seen = 2
        b.offer(_raw(2))  # nobody watches: it stays unencoded
        time.sleep(0.1)
        assert b.encoded == 1
    finally:
        b.close()


def test_a_snapshot_waits_for_the_next_frame_or_gives_up():
    b = Broadcaster()
    try:
        b.seen = 3
        assert b.snapshot(0.1) is None  # frame 3 went by unread, and no 4th came

        def later():
            time.sleep(0.2)
            b.seen = 4
            b.offer(_raw(4))

        threading.Thread(target=later).start()
        jpeg = b.snapshot(5)
        assert jpeg is not None and jpeg.number == 4
        b.end()
        assert b.snapshot(0.1) is jpeg  # after the end: the last one there is
    finally:
        b.close()
