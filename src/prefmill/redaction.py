"""Secrets in recipe text: endpoint URL credentials (``http://user:key@host/v1``) and inline secret
options (``?api_key=...``).

``redact`` replaces them with ``***`` for anything shown or stored (messages, logs, version configs,
Prefect's flow parameters). The recipe loader ``hide_secrets`` the engine specs it reads: from then on
a recipe holds only the hidden form, and the engine ``reveal``s the real URL when it is built, in this
process or one it started (``$PREFMILL_URL_SECRETS``). Inline secret options are refused instead
(``inline_secret_option``): keys belong in environment variables (``api_key_env``).
"""

from __future__ import annotations

import json
import os
import re

#: ``scheme://NETLOC``: NETLOC is ``[userinfo@]host[:port]`` (userinfo ends at its last '@').
_AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#\s]*)")
#: Options whose value is a secret, written inline (refused; ``api_key_env`` names a variable).
SECRET_OPTIONS = ("api_key", "key", "token", "password", "secret")
_SECRET_OPTION = re.compile(r"(?P<name>[?&](?:" + "|".join(SECRET_OPTIONS) + r"))=(?P<value>[^&\s]*)", re.I)
#: Placeholder written where a secret was.
HIDDEN = "***"
#: Environment variable carrying the hidden URL secrets to worker processes (JSON: hidden -> real).
SECRETS_ENV = "PREFMILL_URL_SECRETS"
_SECRETS: dict[str, str] = {}


def _authorities(text: str) -> list[tuple[str, str]]:
    """(real, hidden) ``scheme://netloc`` of each URL in ``text`` that carries userinfo."""
    out = []
    for found in _AUTHORITY.finditer(text):
        userinfo, sep, host = found.group("netloc").rpartition("@")
        if sep:
            user, colon, _ = userinfo.partition(":")
            hidden = f"{found.group('scheme')}{user + ':' if colon else ''}{HIDDEN}@{host}"
            out.append((found.group(0), hidden))
    return out


def redact(text: str) -> str:
    """``text`` with every URL's password (or bare token) and every inline secret option replaced by
    ``***``: safe for messages, logs, version configs and Prefect's parameters."""
    for real, hidden in _authorities(text):
        text = text.replace(real, hidden)
    return _SECRET_OPTION.sub(lambda m: f"{m.group('name')}={HIDDEN}", text)


def has_secret(text: str) -> bool:
    return redact(text) != text


def inline_secret_option(spec: str) -> str | None:
    """The name of a secret option written inline in ``spec`` (``?api_key=...``), or None."""
    found = _SECRET_OPTION.search(spec)
    return found.group("name")[1:] if found else None


def hide_secrets(text: str) -> str:
    """``redact(text)``, remembering each hidden URL authority so ``reveal`` gives the real one back,
    in this process and in the processes it starts (through ``$PREFMILL_URL_SECRETS``). What a recipe
    carries from then on, into flow parameters, version configs and messages, holds no secret."""
    found = _authorities(text)
    if found:
        _SECRETS.update({hidden: real for real, hidden in found})
        os.environ[SECRETS_ENV] = json.dumps({**_env_secrets(), **_SECRETS})
    return redact(text)


def _env_secrets() -> dict[str, str]:
    try:
        found = json.loads(os.environ.get(SECRETS_ENV) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def reveal(url: str) -> str:
    """The real URL behind one that ``hide_secrets`` hid (``url`` itself when nothing was hidden)."""
    if HIDDEN not in url:
        return url
    known = {**_env_secrets(), **_SECRETS}
    for hidden, real in known.items():
        if url == hidden or url.startswith((hidden + "/", hidden + "?")):
            return real + url[len(hidden) :]
    return url
