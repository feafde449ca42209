"""web: what vflow serves over HTTP, with the standard library alone.

    server.py      the HTTP core every page shares: one thread per connection, limits on
                   requests, the Host check, logging
    connections.py the client slots (503 when full; connections not yet let in hold at
                   most half) and the one deadline of a request head (slowloris)
    auth.py        the access token: header, Basic password, query or cookie; 401s logged
    hosts.py       who may listen (beyond loopback: a token or --no-token) and the Host
                   names a server answers to (DNS rebinding)
    mjpeg.py       Broadcaster: one JPEG encode per frame for any number of viewers, each
                   viewer a latest-frame slot, so a slow one skips frames and costs no memory
    events.py      Feed and Server-Sent Events: the latest value, sent to each client when
                   it is ready for it
    metrics.py     the Prometheus text format, by hand, and the process's own numbers
    pages.py       the HTML, script and style sheet of the pages (in assets/)
    stream.py      StreamServer: the routes of `vflow serve` over one stream
    graph_page.py  serve_graph(): the live page of a running `vflow graph`

Why no framework: a page, a multipart stream, an event stream and a text exposition are
each a few lines over http.server; a thread per client blocks in send(), where Python
lets go of the GIL, so viewers cost the pipeline little more than the kernel's copies.
"""
