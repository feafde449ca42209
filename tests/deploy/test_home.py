"""examples/home.toml, the README's four-camera home: a valid graph, and what it promises."""

from __future__ import annotations

import tomllib

from tests.helpers import ROOT, vflow

SPEC = ROOT / "examples" / "home.toml"


def test_the_home_spec_checks():
    result = vflow("graph", "--check", str(SPEC))
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().strip() == f"vflow graph: {SPEC}: 28 nodes, ok"


def test_four_cameras_each_with_clips_on_a_person_mqtt_and_a_view():
    nodes = tomllib.loads(SPEC.read_text())["nodes"]
    cameras = [name for name, node in nodes.items() if node["run"][0] == "camera"]
    assert len(cameras) == 4
    for cam in cameras:
        assert nodes[cam]["run"][1].startswith("rtsp://")
        below = {n for n, node in nodes.items() if cam in node.get("from", [])}
        assert [nodes[n]["run"][0] for n in below] == ["detect"]
        (det,) = below
        (track,) = [n for n, node in nodes.items() if det in node.get("from", [])]
        outs = {nodes[n]["run"][0]: nodes[n] for n in nodes if track in nodes[n].get("from", [])}
        assert set(outs) == {"clip", "mqtt", "annotate"}
        assert "objects:person" in outs["clip"]["run"]
        assert outs["mqtt"]["run"][1].startswith("mqtt://")
        (serve,) = [
            n
            for n in nodes
            if nodes[n]["run"][0] == "serve" and nodes[n]["from"] == [f"{cam}-view"]
        ]
        assert serve


def test_the_readme_shows_it():
    readme = (ROOT / "README.md").read_text()
    assert "vflow graph --check examples/home.toml      # 28 nodes, ok" in readme
