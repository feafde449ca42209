"""net: vflow streams across machines, on NATS (core for live, JetStream for durable).

url.py         nats://[user[:password]@]host[:port]/SUBJECT, credentials, TLS
options.py     the click options send, recv, worker and `vflow nats` share
server.py      the local server behind nats:///SUBJECT (started on demand, shared, idles out)
ours.py        proof that its folder, processes and socket are ours (records are not trusted)
loop.py        the asyncio loop thread, and the bounded hand-offs to and from a stage
session.py     one connection for one stage: connect, heartbeats, close
messages.py    a stream as NATS messages: headers, bodies (JPEG on the wire), chunks
connection.py  connecting (errors in one line), JetStream streams, the recv bookmarks
publisher.py   packets out, in order, bounded (live: drop the oldest; durable: wait)
sender.py      `vflow send`: publish, heartbeats, end or cut
reorder.py     back in sequence order within a time window
receiver.py    `vflow recv`: follow one stream, reorder, end like a pipe
dead.py        dead letters: written by workers, read and replayed by `vflow recv --dead`
worker.py      `vflow worker`: any stage as a competing consumer
command.py     `vflow nats`: the local server's status, start, stop; stream listing

Nothing here is imported by `vflow --help`; nats-py is imported only when a stage connects.
"""
