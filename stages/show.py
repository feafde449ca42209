"""show: display frames in a window; ESC or q closes it and ends the pipeline. Streaming."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import click

from vflow_cli.stage import Packet, StageError, consumer, log

QUIT_KEYS = frozenset({27, ord("q"), ord("Q")})  # ESC, q


@consumer
@click.option("--title", default=None, help="Window title. Default: the stream's source name.")
@click.option(
    "--fps",
    "overlay",
    is_flag=True,
    help="Draw the rate frames are shown at in the window's top-right corner.",
)
@click.option(
    "--wait", is_flag=True, help="At end of input keep the last frame up until a key is pressed."
)
def show(packets: Iterator[Packet], title: str | None, overlay: bool, wait: bool) -> None:
    """Show frames in a window titled with the stream's name; ESC or q closes it.

    Closing the window ends this stage; the stages before it then stop quietly (exit
    status 141, as with `head`). Frames are shown as they arrive: use `read --realtime`
    to watch a file at its own speed. Needs a display: without one, use `vflow write` or
    `vflow save`. On a busy machine the Qt inside OpenCV can miss that its window was
    mapped and leave it black; minimising and restoring the window brings the frames.

    \b
      vflow camera 0 | vflow show --fps
      vflow read clip.mp4 --realtime | vflow stamp '{timecode}' | vflow show
    """
    from vflow_cli.display import display_problem
    from vflow_cli.images import viewable_picture
    from vflow_cli.opencv import cv2_module, native_stderr_to_log
    from vflow_cli.vision.draw import draw_text

    problem = display_problem()
    if problem:
        raise StageError(
            f"{problem}; cannot open a window here. Write a file instead: "
            "`vflow write out.mp4` or `vflow save frames/`"
        )
    cv2 = cv2_module()
    name: str | None = None
    times: deque[float] = deque(maxlen=31)
    shown = 0
    try:
        for packet in packets:
            if packet.get("kind") == "stream" and name is None:
                name = title or str(packet.get("source") or "vflow")
                continue
            image = packet.get("image")
            if image is None:
                continue
            picture = viewable_picture(packet)
            if name is None:
                name = title or "vflow"
            if overlay:
                times.append(time.perf_counter())
                if len(times) > 1 and times[-1] > times[0]:
                    rate = (len(times) - 1) / (times[-1] - times[0])
                    text = f"{rate:.1f} fps"
                    if not picture.flags.writeable or picture is image:
                        picture = picture.copy()
                    draw_text(picture, text, "tr")
            if shown == 0:
                with native_stderr_to_log():  # Qt's start-up chatter (fonts, plugins)
                    cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
                    cv2.imshow(name, picture)
                    key = cv2.waitKey(1)
            else:
                cv2.imshow(name, picture)
                key = cv2.waitKey(1)
            shown += 1
            if (key != -1 and (key & 0xFF) in QUIT_KEYS) or _closed(cv2, name):
                log.info("window closed after %d frames", shown)
                return
        if wait and shown and name is not None:
            while not _closed(cv2, name):
                key = cv2.waitKey(50)
                if key != -1:
                    break
    finally:
        if shown:
            cv2.destroyAllWindows()
            cv2.waitKey(1)


def _closed(cv2, name: str) -> bool:
    """The user closed the window with the window manager's button."""
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True
