"""redact: secrets out of command lines and text that others may see (the graph page).

A node's command line is shown on the graph's page, in its drawing and in /status.json;
whoever may read the page may not read the secrets the command was given. Masked, with
"***" in place of the value:

    --token VALUE, --token=VALUE    any option whose name holds token, password, passwd,
                                    secret or key, but those that name a file (--key FILE,
                                    --tls-key, --nkey, --creds, anything ending in -file)
    NATS_TOKEN=VALUE                the same words in a NAME=VALUE word (env, make)
    scheme://user:pass@host         a URL's userinfo, whole (a NATS token stands there too)
    ?token=VALUE&key=VALUE          the same words in a URL's query

The way to keep a secret out of every command line (and `ps`) is a file or the
environment: --token-file FILE, $VFLOW_SERVE_TOKEN, --creds FILE.
"""

from __future__ import annotations

import re

MASK = "***"
_SECRET = re.compile(r"token|passw(or)?d|secret|key", re.IGNORECASE)
_FILES = frozenset({"--key", "--tls-key", "--nkey", "--creds", "--tls-cert", "--tls-ca"})
_USERINFO = re.compile(r"(\w[\w+.-]*://)[^/@\s\"]*@")
_QUERY = re.compile(
    r"([?&][^=&\s\"]*(?:token|passw(?:or)?d|secret|key)[^=&\s\"]*=)[^&#\s\"]*", re.IGNORECASE
)


def _secret_option(name: str) -> bool:
    """--token, --nats-password, --api-key: an option whose value is the secret itself."""
    if name in _FILES or name.startswith("--no-") or name.endswith(("-file", "-path", "-dir")):
        return False
    return bool(_SECRET.search(name))


def redact_words(words: list[str]) -> list[str]:
    """A command line (a list of words) with secrets masked."""
    out: list[str] = []
    value_next = False
    for word in words:
        if value_next and not word.startswith("-"):
            out.append(MASK)
            value_next = False
            continue
        value_next = False
        name, eq, _ = word.partition("=")
        if word.startswith("-") and not word.startswith("---") and _secret_option(name):
            if eq:
                word = f"{name}={MASK}"
            else:
                value_next = True
        elif eq and not word.startswith("-") and "/" not in name and _SECRET.search(name):
            word = f"{name}={MASK}"  # NATS_TOKEN=..., an environment assignment
        out.append(redact(word))
    return out


def redact(text: str) -> str:
    """Text (a line of stderr, a URL) with URL userinfo and secret query values masked."""
    return _QUERY.sub(lambda m: m.group(1) + MASK, _USERINFO.sub(rf"\g<1>{MASK}@", text))


def redact_line(line: str) -> str:
    """A command line as one string of words separated by spaces (a graph node's label)."""
    return " ".join(redact_words(line.split(" ")))


def printable(text: str) -> str:
    """Text from the network as it may reach a terminal: control characters (ESC starts a
    terminal's commands) written as escapes, \\x1b."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def for_log(text: str) -> str:
    """A request line or a path from a client, fit for a log line: secrets masked,
    control characters escaped."""
    return printable(redact(text))
