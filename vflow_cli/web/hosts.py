"""web.hosts: who may listen to a server, and which names it answers to (the Host header).

DNS rebinding: a web page on attacker.example makes its own name resolve to this machine,
then reads the server as if it were its own origin; the browser sends `Host:
attacker.example`. So a server answers only to names that mean this machine:

    always          localhost, *.localhost, loopback addresses
    bound beyond    the machine's host name (and NAME.local), and any address of this
    loopback        machine written as a number (the kernel says which: it lets us bind it)
    --allow-host    any other name it is reached by (a DNS name, a reverse proxy's)

Anything else is a 403. Listening beyond loopback without a token needs `--no-token`, so
that opening a stream to the network is never an accident.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

from vflow_cli.errors import StageError

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(name: str) -> bool:
    """An address (or name) that only this machine reaches."""
    name = name.lower().rstrip(".")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in LOOPBACK_NAMES or name.endswith(".localhost")


def host_name(header: str) -> str:
    """The name in a Host header, without its port and brackets, lower case."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


@functools.lru_cache(maxsize=256)
def is_local_address(name: str) -> bool:
    """An IP address of one of this machine's interfaces (binding to it succeeds)."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def check_exposure(bind: str, token: str | None, no_token: bool) -> None:
    """Refuse to listen beyond loopback with no token, unless --no-token says so."""
    if token is None and not no_token and not is_loopback(bind):
        raise StageError(
            f"--bind {bind} lets other machines in, and no token is set: give "
            "--token-file FILE (or $VFLOW_SERVE_TOKEN), or --no-token to serve anyone who "
            "can reach this machine"
        )


class Hosts:
    """Which Host headers a server bound to `bind` answers to."""

    def __init__(self, bind: str, allow: Iterable[str] = ()) -> None:
        self.loopback = is_loopback(bind)
        self.names = {host_name(name) for name in allow if name.strip()}
        if not self.loopback:
            machine = socket.gethostname().lower()
            self.names |= {machine, f"{machine}.local", machine.partition(".")[0]}
            if bind not in WILDCARDS:
                self.names.add(host_name(bind))

    def allows(self, header: str) -> bool:
        name = host_name(header)
        if not name:
            return False
        if name in self.names or is_loopback(name):
            return True
        return not self.loopback and is_local_address(name)
