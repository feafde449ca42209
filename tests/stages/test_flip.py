import pytest
from vflow_stages.flip import flip

from tests.helpers import frame, pack, unpack, vflow


@pytest.mark.parametrize(
    ("direction", "index"),
    [
        ("h", (slice(None), slice(None, None, -1))),
        ("v", (slice(None, None, -1),)),
        ("both", (slice(None, None, -1), slice(None, None, -1))),
    ],
)
def test_directions(direction, index):
    source = frame(3)
    expect = source["image"][index].copy()
    out = list(flip(iter([source]), direction))
    assert (out[0]["image"] == expect).all() and out[0]["seq"] == 3


def test_default_is_a_mirror_through_a_real_process():
    source = frame(0)
    result = vflow("flip", input=pack([source]))
    assert result.returncode == 0, result.stderr
    assert (unpack(result.stdout)[0]["image"] == source["image"][:, ::-1]).all()


def test_an_unknown_direction_is_a_usage_error():
    result = vflow("flip", "sideways", input=pack([frame(0)]))
    assert result.returncode == 2 and b"Traceback" not in result.stderr
