"""Video benchmarks: decoding a 1080p H.264 file, and a decode-resize-encode chain, each beside
the equivalent ffmpeg command line. The input is made here with ffmpeg (libx264)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.bench.common import Row, wall
from tests.video_support import h264_clip

FRAMES = 300
SIZE = "1920x1080"


def paired(mine: str, peer: str, repeat: int = 3) -> tuple[float, float]:
    """Best wall times of two commands run in turns (like wall(): other load only adds time;
    taking turns lets a busy spell hit both alike)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(wall(mine, repeat=1))
        b.append(wall(peer, repeat=1))
    return min(a), min(b)


def rows() -> list[Row]:
    if not shutil.which("ffmpeg"):
        print("bench video: ffmpeg is not installed (make system-deps); skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory(prefix="vflow-bench-") as scratch:
        folder = Path(scratch)
        clip = h264_clip(folder, FRAMES, SIZE, rate=30, timeout=600)
        out = folder / "out.mp4"
        peer_out = folder / "peer.mp4"
        decode, decode_peer = paired(
            f"vflow read {clip} | vflow null",
            f"ffmpeg -v error -i {clip} -f rawvideo -pix_fmt bgr24 - | cat >/dev/null",
            repeat=5,
        )
        ratio = decode / decode_peer
        # .mp4 is H.264 (libx264 veryfast, CRF 23, through PyAV); the peer encodes the same
        chain, chain_peer = paired(
            f"vflow read {clip} | vflow resize 640x360 | vflow write {out}",
            f"ffmpeg -v error -y -i {clip} -vf scale=640:360:flags=area -c:v libx264 "
            f"-preset veryfast -crf 23 -pix_fmt yuv420p {peer_out}",
        )
        # the encoder alone, the same 640x360 frames and x264 settings: vflow's (PyAV, on a
        # thread) against FFmpeg's own program fed raw frames through a pipe
        recording, raw = folder / "small.vflow", folder / "small.bgr"
        wall(f"vflow read {clip} | vflow resize 640x360 > {recording}", repeat=1)
        wall(
            f"ffmpeg -v error -y -i {clip} -vf scale=640:360:flags=area -f rawvideo "
            f"-pix_fmt bgr24 {raw}",
            repeat=1,
        )
        encode, encode_peer = paired(
            f"vflow write {out} < {recording}",
            f"cat {raw} | ffmpeg -v error -y -f rawvideo -pix_fmt bgr24 -s 640x360 -r 30 -i - "
            f"-c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p {peer_out}",
        )
        # the path .mp4 took before H.264: OpenCV's single-threaded MPEG-4 Part 2 writer
        old, old_peer = paired(
            f"vflow read {clip} | vflow resize 640x360 | vflow write {out} --codec mp4v",
            f"ffmpeg -v error -y -i {clip} -vf scale=640:360:flags=area -c:v mpeg4 -q:v 5 "
            f"{peer_out}",
        )
    return [
        Row(
            f"decode {FRAMES} frames {SIZE} H.264: read | null",
            decode,
            "s",
            "ffmpeg -f rawvideo bgr24 | cat",
            decode_peer,
            "<= 1.2x (aim 1.0x)",
            ratio <= 1.2,
        ),
        Row(
            f"{FRAMES} frames 1080p: read | resize 640x360 | write .mp4 (H.264)",
            chain,
            "s",
            "ffmpeg -vf scale -c:v libx264 veryfast",
            chain_peer,
            "<= 1.3x",
            chain / chain_peer <= 1.3,
        ),
        Row(
            f"{FRAMES} frames 640x360: write .mp4 (H.264 through PyAV)",
            encode,
            "s",
            "raw frames | ffmpeg -c:v libx264 (a pipe)",
            encode_peer,
            "reported (why PyAV)",
        ),
        Row(
            f"{FRAMES} frames 1080p: read | resize 640x360 | write --codec mp4v",
            old,
            "s",
            "ffmpeg -vf scale -c:v mpeg4",
            old_peer,
            "reported",
        ),
    ]
