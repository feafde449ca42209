"""display: can a window be opened here? (checked before Qt gets a chance to abort)"""

from __future__ import annotations

import os


def display_problem() -> str | None:
    """Why no window can be opened here (no DISPLAY, or an X server that does not answer),
    or None. Checked before cv2 touches the display: Qt aborts the process when it cannot
    connect."""
    import sys

    if sys.platform in ("win32", "darwin"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        if os.environ.get("WAYLAND_DISPLAY"):
            return None  # Qt may use Wayland, or Xwayland through DISPLAY; let it try
        return "no display (DISPLAY is not set)"
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name:
        try:
            xlib = ctypes.CDLL(name)
            xlib.XOpenDisplay.restype = ctypes.c_void_p
            xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
            xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
            handle = xlib.XOpenDisplay(display.encode())
        except (OSError, AttributeError):
            handle = None
            name = None
        else:
            if not handle:
                return f"cannot open display {display!r}"
            xlib.XCloseDisplay(handle)
            return None
    return _x_socket_problem(display)


def _x_socket_problem(display: str) -> str | None:
    """Without libX11: can we at least connect to the display's socket?"""
    import socket

    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY {display!r} is not host:number"
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                try:
                    sock.connect(f"/tmp/.X11-unix/X{number}")
                except OSError:
                    sock.connect(f"\0/tmp/.X11-unix/X{number}")  # Linux abstract socket
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except OSError:
        return f"cannot open display {display!r}"
    return None
