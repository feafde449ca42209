"""clip: one video file per incident, with the seconds before it. Buffers --pre seconds."""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.stage import Packet, StageError, consumer, log
from vflow_cli.videofile import DiskFull, Headroom, free_bytes, open_writer

DEFAULT_FPS = 25.0
SPARE = 256 << 10  # room to finalise a file: FFmpeg's output buffer and the index
SIDECAR_ROOM = 64 << 10  # reserved for the JSON beside a clip when it is opened
MAX_TRIGGERS = 200  # triggers listed in one sidecar; the rest are counted


class Trigger:
    """--on KIND[:FILTER]: which packets start or extend a clip."""

    def __init__(self, text: str) -> None:
        kind, _, rest = text.partition(":")
        if not kind:
            raise click.BadParameter(
                f"{text!r}: give a KIND, e.g. event, event:enter, objects:person"
            )
        self.text, self.kind = text, kind
        self.values = {v.strip() for v in rest.split(",") if v.strip()}

    def matches(self, packet: Packet) -> list[dict[str, Any]]:
        """What in `packet` fires this trigger (objects, or the packet itself); [] if nothing."""
        if self.kind == "objects":
            if packet.get("kind") != "frame" or not isinstance(packet.get("objects"), list):
                return []
            return [
                o
                for o in packet["objects"]
                if isinstance(o, dict)
                and (not self.values or {str(o.get("label")), str(o.get("class"))} & self.values)
            ]
        if packet.get("kind") != self.kind:
            return []
        if not self.values:
            return [packet]
        fields = {str(packet.get(k)) for k in ("event", "line", "zone", "label", "direction")}
        return [packet] if fields & self.values else []


def _triggers(ctx: Any, param: Any, value: tuple[str, ...]) -> list[Trigger]:
    return [Trigger(text) for text in (value or ("event",))]


class Ring:
    """The last frames as JPEG, bounded by seconds of media time and by bytes."""

    def __init__(self, seconds: float, limit: int, quality: int) -> None:
        self.seconds, self.limit, self.quality = seconds, limit, quality
        self.frames: collections.deque[tuple[float, float, bytes]] = collections.deque()
        self.bytes = 0
        self.warned = False

    def push(self, t: float, wall: float, picture: Any) -> None:
        from vflow_cli.images import jpeg

        data = bytes(jpeg(picture, self.quality).data)
        self.frames.append((t, wall, data))
        self.bytes += len(data)
        while self.frames and t - self.frames[0][0] > self.seconds:
            self.bytes -= len(self.frames.popleft()[2])
        while self.bytes > self.limit and len(self.frames) > 1:
            self.bytes -= len(self.frames.popleft()[2])
            if not self.warned:
                log.warning(
                    "the ring (--ring-bytes %d) holds only %.1f s of these frames, not the "
                    "--pre %g s; raise --ring-bytes",
                    self.limit,
                    t - self.frames[0][0],
                    self.seconds,
                )
                self.warned = True

    def rate(self) -> float | None:
        """Frames a second as they arrive (fewer than announced when frames were dropped
        before this stage: a clip written at this rate keeps real time)."""
        import statistics

        steps = [b[0] - a[0] for a, b in zip(self.frames, list(self.frames)[1:], strict=False)]
        steps = [step for step in steps if step > 0]
        if len(steps) < 2:
            return None
        return max(1.0, min(120.0, 1 / statistics.median(steps)))

    def take(self) -> list[tuple[float, float, Any]]:
        """The last --pre seconds of frames held, decoded; the ring is left empty. (Counted
        from the newest frame, not from the trigger: after a gap, the seconds before it.)"""
        import cv2
        import numpy as np

        since = self.frames[-1][0] - self.seconds if self.frames else 0.0
        out = [
            (t, wall, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
            for t, wall, data in self.frames
            if t >= since - 1e-9
        ]
        self.frames.clear()
        self.bytes = 0
        return out


class Clip:
    """One incident's video file and its JSON sidecar."""

    def __init__(self, path: str, fourcc: str, fps: float, size: tuple[int, int]) -> None:
        self.path, self.size = path, size
        self.sidecar = os.path.splitext(path)[0] + ".json"
        self.info: dict[str, Any] = {
            "file": os.path.basename(path),
            "fps": fps,
            "triggers": [],
            "ids": [],
            "frames": 0,
        }
        self.more = 0
        self.ids: set[Any] = set()
        if free_bytes(os.path.dirname(path)) < SPARE + SIDECAR_ROOM:
            raise DiskFull
        # the sidecar's room is taken now, so a disk that fills can still say what happened;
        # until the clip ends it says it is being recorded (JSON may end in blanks). It is
        # written under a hidden name and renamed: a reader never sees it empty
        folder, name = os.path.split(self.sidecar)
        part = os.path.join(folder, f".{name}.part")
        self.meta = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(self.meta, self._text(complete=False, stopped=None).ljust(SIDECAR_ROOM), 0)
            os.rename(part, self.sidecar)
        except OSError:
            os.close(self.meta)
            os.unlink(part)
            raise DiskFull from None
        try:
            self.writer = open_writer(path, fourcc, fps, size, spare=SPARE)
        except (StageError, DiskFull):
            os.close(self.meta)
            raise
        if not self.writer.isOpened():
            os.close(self.meta)
            raise StageError(f"cannot write {path} with codec {fourcc!r}; try another --ext")
        self.room = Headroom(path, SPARE)

    def add(self, fired: list[dict[str, Any]], packet: Packet, what: str) -> None:
        for item in fired:
            ident = item.get("id")
            if isinstance(ident, (int, str)):  # what a tracker or a zone gives; not damage
                self.ids.add(ident)
        if len(self.info["triggers"]) >= MAX_TRIGGERS:
            self.more += 1
            return
        record: dict[str, Any] = {
            k: packet.get(k) for k in ("kind", "seq", "t", "wall") if k in packet
        }
        record["on"] = what
        if packet.get("kind") == "frame":
            record["objects"] = [
                {k: o.get(k) for k in ("id", "label", "score", "box") if k in o} for o in fired
            ]
        else:
            record.update({k: v for k, v in packet.items() if k not in record and k != "image"})
        self.info["triggers"].append(record)

    def write(self, picture: Any, t: float, wall: float) -> None:
        import cv2

        if (picture.shape[1], picture.shape[0]) != self.size:
            picture = cv2.resize(picture, self.size)
        frames = self.info["frames"]
        self.room.write(self.writer, picture)
        if not frames:
            self.info["start"] = {"t": t, "wall": wall}
        self.info["end"] = {"t": t, "wall": wall}
        self.info["frames"] = frames + 1

    def _text(self, **more: Any) -> bytes:
        info = {**self.info, "ids": sorted(self.ids, key=str), "more_triggers": self.more, **more}
        text = (json.dumps(info, default=str, skipkeys=True, indent=1) + "\n").encode()
        if len(text) > SIDECAR_ROOM:  # what fits in the room taken: the first triggers
            keep = len(info["triggers"]) * SIDECAR_ROOM // len(text) // 2
            info["more_triggers"] += len(info["triggers"]) - keep
            info["triggers"] = info["triggers"][:keep]
            text = (json.dumps(info, default=str, skipkeys=True) + "\n").encode()
        return text

    def close(self, stopped: str) -> None:
        self.writer.release()
        text = self._text(complete=stopped in ("post", "end of input"), stopped=stopped)
        # over the room taken, so it needs no new block; blanks to its end until the file is
        # cut to size, so that a reader at any moment sees whole JSON
        os.pwrite(self.meta, text.ljust(SIDECAR_ROOM), 0)
        os.ftruncate(self.meta, len(text))
        os.close(self.meta)


@consumer(stateful=True)
@click.argument("directory", metavar="DIR")
@click.option(
    "--pre",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds of video kept from before the first trigger.",
)
@click.option(
    "--post",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds recorded after the last trigger.",
)
@click.option(
    "--on",
    "triggers",
    multiple=True,
    metavar="KIND[:FILTER]",
    callback=_triggers,
    help="What starts or extends a clip (repeatable; default: event): a packet "
    "kind (event, gap, ...), FILTER its event, line, zone, label or direction "
    "(event:enter, event:door, event:person); or objects:LABEL,... for frames "
    "with objects of these classes (objects:person,car; objects alone: any).",
)
@click.option(
    "--ext",
    type=click.Choice(["mp4", "avi", "mkv"]),
    default="mp4",
    show_default=True,
    help="Container of the clips; the codec follows it.",
)
@click.option(
    "--ring-bytes",
    type=click.IntRange(min=1 << 16),
    default=64 << 20,
    show_default=True,
    metavar="BYTES",
    help="Most memory the --pre ring may hold (JPEG frames).",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=90,
    show_default=True,
    help="JPEG quality of the frames in the ring.",
)
def clip(
    packets: Iterator[Packet],
    directory: str,
    pre: float,
    post: float,
    triggers: list[Trigger],
    ext: str,
    ring_bytes: int,
    quality: int,
) -> None:
    """Write a video clip into DIR for each incident, from --pre seconds before it.

    Keeps the last --pre seconds of frames (JPEG, at most --ring-bytes; for a "gap" from
    `vflow camera`, the seconds before the camera was lost). When a trigger arrives (by
    default any "event" packet: a line crossed, a zone entered) it opens
    DIR/clip-YYYYmmdd-HHMMSS-N.EXT with those frames, and records until --post seconds
    (media time) after the last trigger: triggers in the meantime extend the same clip,
    so overlapping events make one file with every frame, written at the rate frames
    arrive (frames dropped upstream do not make it play fast). Beside it, a JSON sidecar:
    start and end ({t, wall}), frames, fps, the triggers (their packets' metadata; the
    first 200), the object ids involved, complete, and stopped (post, end of input, disk
    full; null while the clip is being recorded). A disk about to be full ends the clip
    while it can still be finalised, says so, and later incidents are tried again.
    Buffers: keeps --pre seconds of frames.

    \b
      vflow camera rtsp://door/live | vflow detect | vflow clip clips --on objects:person
      ... | vflow track | vflow line door 0,300 640,300 | vflow clip clips --on event:door
    """
    from vflow_cli.images import viewable_picture
    from vflow_cli.videofile import codec_for, probe_codec

    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise StageError(f"cannot make {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StageError(f"cannot write into {directory}: permission denied")
    fourcc = codec_for("clip." + ext, None)
    probe_codec("clip." + ext, fourcc)
    ring = Ring(pre, ring_bytes, quality)
    rate: float | None = None
    current: Clip | None = None
    until = 0.0
    made = 0
    last_t = 0.0
    count = 0

    def open_clip(t: float, wall: float, size: tuple[int, int]) -> Clip | None:
        nonlocal made
        made += 1
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))
        path = os.path.join(directory, f"clip-{stamp}-{made}.{ext}")
        try:
            opened = Clip(path, fourcc, ring.rate() or rate or DEFAULT_FPS, size)
        except DiskFull:
            log.warning(
                "no space left in %s: the incident at t=%.2f s is not recorded", directory, t
            )
            return None
        log.info("incident at t=%.2f s: writing %s", t, path)
        for at, when, picture in ring.take():
            if not record(opened, picture, at, when):
                return None
        return opened

    def record(into: Clip, picture: Any, t: float, wall: float) -> bool:
        """Write one frame; on a disk about to be full, end the clip cleanly: False."""
        nonlocal current
        try:
            into.write(picture, t, wall)
            return True
        except DiskFull:
            log.warning(
                "no space left in %s: %s ends at t=%.2f s (%d frames), finalised; "
                "later incidents are tried again",
                directory,
                into.path,
                into.info.get("end", {}).get("t", t),
                into.info["frames"],
            )
            into.close("disk full")
            current = None
            return False

    def close_clip(stopped: str) -> None:
        nonlocal current
        if current is not None:
            current.close(stopped)
            log.info("wrote %s (%d frames)", current.path, current.info["frames"])
            current = None

    def fire(packet: Packet, t: float, wall: float, size: tuple[int, int] | None) -> None:
        nonlocal current, until
        for trigger in triggers:
            fired = trigger.matches(packet)
            if not fired:
                continue
            if current is None and size is not None:
                current = open_clip(t, wall, size)
            if current is not None:
                current.add(fired, packet, trigger.text)
                until = max(until, t + post)

    size: tuple[int, int] | None = None
    try:
        for packet in packets:
            kind = packet.get("kind")
            if kind == "stream":
                fps = packet.get("fps")
                if rate is None and isinstance(fps, (int, float)) and 0 < fps < 1000:
                    rate = float(fps)
                continue
            t = packet.get("t")
            t = float(t) if isinstance(t, (int, float)) else last_t
            wall = packet.get("wall")
            wall = float(wall) if isinstance(wall, (int, float)) else time.time()
            if kind == "frame" and packet.get("image") is not None:
                count += 1
                last_t = t
                if current is not None and t > until + 1e-9:
                    close_clip("post")
                picture = viewable_picture(packet)
                size = size or (picture.shape[1], picture.shape[0])
                if current is not None:
                    record(current, picture, t, wall)
                else:
                    ring.push(t, wall, picture)
            fire(packet, t, wall, size)
    finally:
        close_clip("end of input")
    log.info("%d frames, %d clips", count, made)
