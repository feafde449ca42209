import numpy as np
import pytest
from vflow_stages.annotate import annotate

from tests.helpers import pack, sh, unpack, vflow
from tests.scene import DOOR, SCENE, Walker, stream

GREY = 96


def picture(width, height, objects=None, **meta):
    packet = {"kind": "frame", "seq": 0, "t": 0.0, **meta}
    packet["image"] = np.full((height, width, 3), GREY, np.uint8)
    if objects is not None:
        packet["objects"] = objects
    return packet


def person(box, ident=None, score=0.87):
    obj = {"box": box, "score": score, "class": 0, "label": "person"}
    if ident is not None:
        obj["id"] = ident
    return obj


def draw(packets, hide=frozenset(), trail=20, scale=None):
    return [p for p in annotate(iter(packets), hide, trail, scale) if p.get("kind") == "frame"]


def changed(image):
    return (image != GREY).any(axis=2)


def stroke_width(mask, row, x):
    """How many pixels of `row` near `x` the stroke there changed."""
    return int(mask[row, x - 10 : x + 10].sum())


@pytest.mark.parametrize(("width", "height"), [(768, 576), (1920, 1080)])
def test_the_box_is_drawn_where_it_is_and_nowhere_else(width, height):
    s = height / 576
    box = [300 * s, 200 * s, 380 * s, 400 * s]
    out = draw([picture(width, height, [person(box, 3)])], hide=frozenset({"labels"}))
    mask = changed(out[0]["image"])
    x1, y1, x2, y2 = (round(v) for v in box)
    assert mask[(y1 + y2) // 2, x1] and mask[(y1 + y2) // 2, x2]  # left and right edges
    assert mask[y2, (x1 + x2) // 2]  # bottom edge
    assert not mask[y1 + 20 : y2 - 20, x1 + 10 : x2 - 10].any()  # inside stays
    ys, xs = np.nonzero(mask)
    # nothing outside the box but its label above it (ids and score)
    assert xs.min() >= x1 - 5 and ys.max() <= y2 + 5 and ys.min() >= y1 - 40 * s


def test_strokes_and_text_grow_with_the_frame():
    def measure(width, height):
        s = height / 576
        box = [300 * s, 200 * s, 380 * s, 400 * s]
        image = draw([picture(width, height, [person(box, 3)])])[0]["image"]
        mask = changed(image)
        x1, y1 = round(box[0]), round(box[1])
        edge = stroke_width(mask, round(300 * s), x1)
        label = mask[: y1 - 3, x1 + 2]  # the label's band above the box's top-left corner
        return edge, label.sum()

    edge_small, label_small = measure(768, 576)
    edge_big, label_big = measure(1920, 1080)
    assert edge_big > edge_small
    assert 1.5 < label_big / label_small < 2.4  # label height follows the frame (1.875x)


def test_each_id_keeps_its_colour_and_ids_differ():
    frames = [
        picture(768, 576, [person([100, 100, 150, 250], 1), person([400, 100, 450, 250], 2)]),
        picture(768, 576, [person([200, 150, 250, 300], 1)]),
    ]
    out = draw(frames, hide=frozenset({"labels", "ids", "scores", "trails"}))
    first, second = out[0]["image"], out[1]["image"]
    colour_1 = tuple(first[175, 100])
    assert colour_1 == tuple(second[225, 200])
    assert colour_1 != tuple(first[175, 400])


def test_trails_follow_the_foot_point_and_can_be_hidden():
    walker = [Walker(5, [(0, 100, 400), (9, 550, 400)])]
    frames = [p for p in stream(walker, 10, raw=True) if p["kind"] == "frame"]
    with_trail = draw([dict(p, image=p["image"].copy()) for p in frames])[-1]["image"]
    without = draw(frames, hide=frozenset({"trails"}))[-1]["image"]
    assert changed(with_trail)[400, 150:500].all()  # where the foot was on earlier frames
    assert not changed(without)[400, 150:500].any()
    frames = [p for p in stream(walker, 10, raw=True) if p["kind"] == "frame"]
    assert not changed(draw(frames, trail=0)[-1]["image"])[400, 150:500].any()


def test_lines_and_zones_are_drawn_with_their_counts():
    packet = picture(768, 576)
    packet["lines"] = {"door": {"points": [400, 0, 400, 576], "in": 3, "out": 1}}
    packet["zones"] = {"till": {"polygon": [[100, 300], [300, 300], [300, 500], [100, 500]]}}
    image = draw([packet])[0]["image"]
    mask = changed(image)
    assert mask[50:550, 400].all()  # the line
    assert mask[400, 100] and mask[400, 300] and mask[500, 200]  # the zone's outline
    assert mask[350:450, 150:250].sum() == 0  # not filled
    # the arrow points to the "in" side: the picture's left of a top-to-bottom line
    assert mask[288, 370:398].all() and not mask[288, 406:430].any()
    hidden = draw([dict(packet, image=np.full((576, 768, 3), GREY, np.uint8))], hide={"counts"})
    assert changed(hidden[0]["image"]).sum() < mask.sum()  # the labels went


def test_hiding_everything_leaves_the_picture_alone():
    packet = picture(768, 576, [person([100, 100, 150, 250], 1)])
    packet["lines"] = {"door": {"points": [400, 0, 400, 576], "in": 0, "out": 0}}
    everything = frozenset({"boxes", "labels", "scores", "ids", "trails", "lines", "zones"})
    assert not changed(draw([packet], hide=everything)[0]["image"]).any()


def test_grey_and_jpeg_frames_are_drawn_in_colour():
    from vflow_stages.jpeg import encode

    grey = {"kind": "frame", "seq": 0, "image": np.full((576, 768), GREY, np.uint8)}
    grey["objects"] = [person([100, 100, 150, 250], 1)]
    coded = picture(768, 576, [person([100, 100, 150, 250], 1)])
    coded["image"] = encode(coded["image"], 95)
    out = draw([grey, coded])
    for p in out:
        assert p["image"].shape == (576, 768, 3)
        b, g, r = (int(v) for v in p["image"][175, 100])
        assert max(b, g, r) - min(b, g, r) > 60  # a colour, not grey


def test_through_real_pipes_after_line(tmp_path):
    recording = tmp_path / "scene.vflow"
    recording.write_bytes(pack(stream(SCENE, 30, raw=True)))
    result = sh(f"vflow line door {DOOR} < {recording} | vflow annotate > {tmp_path}/out.vflow")
    assert result.statuses == [0, 0], result.stderr
    frames = [p for p in unpack((tmp_path / "out.vflow").read_bytes()) if p["kind"] == "frame"]
    assert len(frames) == 30
    last = frames[-1]
    mask = changed(last["image"])
    for obj in last["objects"]:
        x1, y1, _, y2 = (round(v) for v in obj["box"])
        assert mask[(y1 + y2) // 2, x1], obj  # its box's left edge
    assert mask[100:500, 400].all()  # the door line


def test_unknown_parts_are_a_usage_error():
    result = vflow("annotate", "--hide", "boxes,faces", input=pack([]))
    assert result.returncode == 2 and b"faces" in result.stderr


def test_wild_coordinates_are_drawn_not_a_crash():
    packet = picture(100, 100, [person([-1e12, 5, 1e15, 1e9], 3)])
    packet["lines"] = {"far": {"points": [-1e12, 0, 1e12, 50], "in": 0, "out": 0}}
    packet["zones"] = {"big": {"polygon": [[0, 0], [1e12, 0], [0, 1e12]]}}
    mask = changed(draw([packet])[0]["image"])
    assert mask[:, 5].any() and mask[25, :].any()


def test_grid_lines_every_n_pixels_with_their_coordinates():
    (out,) = list(annotate(iter([picture(640, 480)]), frozenset(), 20, None, 100))
    image = out["image"]
    lit = (image > GREY + 50).all(axis=2)  # grid lines: half-way to white
    # every 100th column and row is a line from edge to edge (below the labels)
    for x in (0, 100, 200, 300, 400, 500, 600):
        assert lit[40:, x].all(), x
    for y in (100, 200, 300, 400):
        assert lit[y, 60:].all(), y
    # nothing between the lines, away from the labels
    assert not lit[101:200, 101:200].any() and not lit[201:300, 301:400].any()
    # labels: text at the top right of each vertical line and above each horizontal one
    inked = (image != GREY).any(axis=2) & ~lit
    assert inked[:30, 103:140].any() and inked[180:200, :40].any()
    assert not inked[60:180, 60:].any()  # no label in the middle of the picture
    (plain,) = [p["image"] for p in annotate(iter([picture(640, 480)]), frozenset(), 20, None)]
    assert (plain == GREY).all()  # no grid unless asked


def test_grid_through_real_pipes():
    result = sh("vflow testcard --frames 1 --size 320x240 | vflow annotate --grid 40 | vflow null")
    assert result.statuses == [0, 0, 0], result.stderr
    bad = vflow("annotate", "--grid", "0", input=pack([]))
    assert bad.returncode == 2 and b"--grid" in bad.stderr


def test_counts_are_drawn_over_people_s_labels():
    """A person standing where a line's counts are written must not hide them: the counts
    are drawn last. Their band keeps the line's colour where the person's label would be."""
    from vflow_cli.vision.draw import id_colour, name_colour

    line = {"door": {"points": [100, 200, 600, 200], "in": 3, "out": 1}}
    alone = picture(768, 576, lines=line)
    crowded = picture(768, 576, [person([95, 190, 300, 400], 7)], lines=line)
    (bare,) = [p["image"] for p in draw([alone], trail=0)]
    (busy,) = [p["image"] for p in draw([crowded], trail=0)]
    band = (bare == name_colour("door")).all(axis=2)  # the counts' band, drawn alone ...
    band[195:] = False  # ... above the line itself (the person's box may cross the line)
    assert band.sum() > 500
    # with the person there, every pixel of that band is still the line's colour ...
    assert (busy[band] == name_colour("door")).all()
    # ... while the person's label (id 7's colour) is drawn, just not over the counts
    assert (busy == id_colour(7)).all(axis=2).sum() > 100
