"""A live RTSP camera for the tests, on GStreamer's rtsp-server (Debian's python3-gi and
gir1.2-gst-rtsp-server-1.0; run it with the system python3, which has them).

    python3 rtsp_server.py PORT [--codec h264|mjpeg] [--fps 25] [--only tcp|udp] [--width W]
        ->  rtsp://127.0.0.1:PORT/cam

The picture is grey with the wall time stamped into its top rows: the milliseconds of Unix
time modulo 2**32 when the frame was made, in blocks of 16x16 pixels, white for 1, black
for 0, then the same inverted (tests/deploy/rtsp.py reads them back and checks them).
Prints "ready" on stdout once it listens. Only loopback.
"""

import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

WIDTH, HEIGHT, BITS, BLOCK = 320, 240, 32, 16


def band(value: int) -> bytes:
    """16 bits, most significant first, as 16 blocks of 16x16 pixels (a macroblock each,
    so the encoder keeps them apart): white 1, black 0; grey after them."""
    row = bytearray()
    for bit in range(15, -1, -1):
        row += (b"\xff" if (value >> bit) & 1 else b"\x00") * BLOCK
    row += b"\x60" * (WIDTH - len(row))
    return bytes(row) * BLOCK


def picture(ms: int, n: int) -> bytes:
    """A GRAY8 frame: the stamp in four bands (high half, low half, then both inverted, so
    that a damaged stamp is found out), and a bar below that moves so the encoder has work."""
    high, low = ms >> 16, ms & 0xFFFF
    stamp = band(high) + band(low) + band(high ^ 0xFFFF) + band(low ^ 0xFFFF)
    rest = bytearray(b"\x60" * (WIDTH * HEIGHT - len(stamp)))
    x = (n * 4) % WIDTH
    for y in range(40, 80):
        rest[y * WIDTH + x : y * WIDTH + min(WIDTH, x + 20)] = b"\xc0" * (min(WIDTH, x + 20) - x)
    return stamp + bytes(rest)


def main() -> None:
    global WIDTH  # the picture's width: --width
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--codec", choices=["h264", "mjpeg"], default="h264")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--only", choices=["tcp", "udp"], help="refuse the other transport")
    parser.add_argument("--width", type=int, default=WIDTH, help="at least 256")
    args = parser.parse_args()
    WIDTH = max(256, args.width)
    Gst.init(None)
    if args.codec == "h264":
        # threads=1: with zerolatency's sliced threads, FFmpeg decoded the P-frames wrong
        # (only the key frames carried a readable stamp)
        encode = (
            f"x264enc tune=zerolatency speed-preset=ultrafast threads=1 "
            f"key-int-max={args.fps} "
            "! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    else:
        encode = "jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26"
    launch = (
        "( appsrc name=src is-live=true do-timestamp=true format=time "
        f"caps=video/x-raw,format=GRAY8,width={WIDTH},height={HEIGHT},framerate={args.fps}/1 "
        f"! videoconvert ! video/x-raw,format=I420 ! {encode} )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if args.only:
        lower = GstRtsp.RTSPLowerTrans
        factory.set_protocols(lower.TCP if args.only == "tcp" else lower.UDP)
    period = 1.0 / args.fps

    def configure(factory, media):
        src = media.get_element().get_child_by_name("src")
        state = {"n": 0, "next": time.monotonic()}

        def need_data(appsrc, length):
            delay = state["next"] - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # a live camera: one frame a period
            state["next"] = max(state["next"] + period, time.monotonic() - period)
            ms = int(time.time() * 1000) % (1 << BITS)
            data = picture(ms, state["n"])
            buffer = Gst.Buffer.new_allocate(None, len(data), None)  # GStreamer's own memory
            buffer.fill(0, data)
            buffer.duration = int(period * Gst.SECOND)
            state["n"] += 1
            appsrc.emit("push-buffer", buffer)

        src.connect("need-data", need_data)

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
