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


def test_one_camera_of_the_home_for_real(tmp_path):
    """RTSP in, a clip and MQTT out, in one graph; the camera restarts in the middle: the
    gap reaches the broker and is the incident of a clip that holds both sides of it."""
    import json
    import signal
    import subprocess

    from tests.deploy.mosquitto import Mosquitto, Subscriber
    from tests.deploy.rtsp import RTSPServer
    from tests.helpers import ENV
    from tests.net.util import vflow_argv, wait_for
    from tests.stages.test_write import count_frames

    broker = Mosquitto(tmp_path / "broker")
    camera = RTSPServer(tmp_path)
    sub = Subscriber(broker.port, topic="home/#")
    clips, seen = tmp_path / "clips", tmp_path / "frames.jsonl"
    spec = tmp_path / "home.toml"
    spec.write_text(
        f'[nodes.door]\nrun = ["camera", "{camera.url}", "--name", "door", "--timeout", "3"]\n'
        f'[nodes.door-clip]\nrun = ["clip", "{clips}", "--on", "gap", "--pre", "1", '
        '"--post", "1", "--ext", "mkv"]\nfrom = ["door"]\n'
        f'[nodes.door-mqtt]\nrun = ["mqtt", "mqtt://127.0.0.1:{broker.port}", "--topic", '
        '"home", "--camera", "door"]\nfrom = ["door"]\n'
        '[nodes.door-seen]\nrun = ["print", "--kind", "frame", "-f", "seq"]\nfrom = ["door"]\n'
        f'stdout = "{seen}"\n'
    )
    err = tmp_path / "graph.err"
    with open(err, "wb") as stderr:
        graph = subprocess.Popen(vflow_argv("graph", str(spec)), stderr=stderr, env=ENV)
    try:
        assert wait_for(lambda: seen.exists() and seen.read_text().count("\n") > 40, timeout=60)
        camera.stop()
        assert wait_for(lambda: b"lost" in err.read_bytes(), timeout=30), err.read_text()
        camera.start()
        assert wait_for(lambda: sub.on("home/door/gap"), timeout=60), err.read_text()

        def finished():
            for path in clips.glob("clip-*.json"):
                info = json.loads(path.read_text())
                return info if info["stopped"] else None
            return None

        assert wait_for(finished, timeout=60), err.read_text()
        graph.send_signal(signal.SIGTERM)
        assert graph.wait(30) in (0, 130, 143), err.read_text()
    finally:
        if graph.poll() is None:
            graph.kill()
            graph.wait()
        sub.stop()
        camera.stop()
        broker.stop()
    (sidecar,) = clips.glob("clip-*.json")
    info = json.loads(sidecar.read_text())
    gap = json.loads(sub.on("home/door/gap")[0])
    assert info["stopped"] == "post" and info["complete"]
    assert [t["kind"] for t in info["triggers"]] == ["gap"]
    assert info["triggers"][0]["since"] == gap["since"]
    # both sides of the gap, and no further than --post after it
    assert info["start"]["t"] <= gap["since"] < gap["t"] <= info["end"]["t"] <= gap["t"] + 1
    assert count_frames(sidecar.with_suffix(".mkv"))[0] == info["frames"]
