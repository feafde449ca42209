"""web.pages: the HTML of the pages, their script and style sheet (files in assets/).

Pages hold no inline script or style, so that the Content-Security-Policy can forbid both
(web.server.PAGE_POLICY): a packet field or a node name that holds markup is shown as text,
never run. Values that go into the HTML are escaped here; the scripts set textContent.
"""

from __future__ import annotations

import functools
import html
from importlib import resources
from string import Template

TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# the files every page may ask for, by path
ASSETS = ("/style.css", "/serve.js", "/graph.js")


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("vflow_cli.web").joinpath("assets", name).read_bytes()


def asset(path: str) -> tuple[str, bytes]:
    """(content type, bytes) of one of ASSETS."""
    name = path.lstrip("/")
    return TYPES[name[name.rindex(".") :]], _read(name)


def serve_page(title: str) -> bytes:
    template = Template(_read("serve.html").decode())
    return template.substitute(title=html.escape(title)).encode()


def graph_page(spec: str, drawing: str) -> bytes:
    """The graph page; `drawing` is trusted markup (Graphviz's SVG, or a note we wrote)."""
    template = Template(_read("graph.html").decode())
    return template.substitute(spec=html.escape(spec), drawing=drawing).encode()
