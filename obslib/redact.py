"""Secrets out of text: the database URL's password masked wherever a message shows it.

Imports nothing from obslib, so the error hierarchy (which scrubs every message) and the
settings can both use it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

ENV_DATABASE_URL = "OBSLIB_DATABASE_URL"  # the URL scrub() hides unless given another

_SECRET_QUERY = re.compile(r"(?i)\b(password|sslpassword)=([^&\s]*)")
_FRAGMENT = re.compile(r"[^\s:@/]{3,}")
_QUOTED = re.compile(r'"([^"]*)"')


def scrub(text: str, url: str | None = None) -> str:
    """``text`` with the database URL's password, wherever and however it shows, as ***.

    libpq quotes the part of a URL it failed to parse, which may be half a password
    (``postgresql://sre:s3cret PW@/db`` fails at ``"PW@/db"``): quoted text that is a piece
    of the URL overlapping its password is masked whole. The whole userinfo
    (``sre:s3cret PW``), the password, each 3+ character piece of it and a ``password=``
    query option are masked wherever they stand. A URL without a password has nothing to
    hide: its user name (``postgres`` for the embedded server) is also a service name in
    the demo, and masking it would garble reports. ``url`` defaults to
    ``$OBSLIB_DATABASE_URL``.
    """
    url = os.environ.get(ENV_DATABASE_URL, "") if url is None else url
    if not text or "://" not in url:
        return text
    spans = {form: _password_spans(form) for form in {url, unquote(url)}}
    passwords = [form[a:b] for form, found in spans.items() for a, b in found]
    if not passwords:
        return text
    text = _QUOTED.sub(lambda m: _mask_quoted(m.group(1), spans) or m.group(0), text)
    secrets = [
        url[:b].split("://", 1)[1]  # the userinfo up to the password's end
        for a, b in spans.get(url, [])
        if "@" in url[b:].split("?", 1)[0] + "@" and url[a - 1] == ":"
    ]
    for password in passwords:  # a 1-2 character password would garble every message
        secrets += [p for p in (password, *_FRAGMENT.findall(password)) if len(p) >= 3]
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _password_spans(url: str) -> list[tuple[int, int]]:
    """Where the passwords stand in ``url``: the userinfo's and any ``password=`` option's."""
    found = []
    start = url.find("://") + 3
    authority_end = len(url.split("?", 1)[0])
    at = url.rfind("@", start, authority_end)
    if at >= 0:
        colon = url.find(":", start, at)
        if 0 <= colon < at - 1:
            found.append((colon + 1, at))
    for match in _SECRET_QUERY.finditer(url):
        if match.group(2):
            found.append(match.span(2))
    return found


def _mask_quoted(quoted: str, spans: dict[str, list[tuple[int, int]]]) -> str | None:
    """``"***"`` when the quoted text is a piece of the URL that overlaps a password (a
    1-2 character piece only when it runs past the password's edge, as libpq's quotes do:
    ``"ok"`` inside the password ``brokenpw`` is a word, not a leak)."""
    if not quoted:
        return None
    for form, found in spans.items():
        at = form.find(quoted)
        while at >= 0:
            end = at + len(quoted)
            # overlapping a password; 1-2 characters only when they run past its edge
            if any(
                at < b and a < end and (len(quoted) >= 3 or at < a or end > b) for a, b in found
            ):
                return '"***"'
            at = form.find(quoted, at + 1)
    return None


# -- alertmanager.yml -------------------------------------------------------------------------

# What Alertmanager itself shows in place of a secret (config.Secret and SecretURL marshal
# to it in the /api/v2/status config and the UI's Status page).
SECRET_PLACEHOLDER = "<secret>"
# Keys Alertmanager's configuration reference (docs/configuration.md) types <secret> or
# <tmpl_secret>, in `global`, the receivers' integrations and their http_config.
ALERTMANAGER_SECRET_KEYS = frozenset(
    {"alert_source_token", "api_key", "api_secret", "api_url", "app_token", "auth_password"}
    | {"auth_secret", "bearer_token", "bot_token", "client_secret", "credentials"}
    | {"mattermost_webhook_url", "opsgenie_api_key", "password", "rocketchat_token"}
    | {"rocketchat_token_id", "routing_key", "secret_key", "secrets", "service_key"}
    | {"slack_api_url", "slack_app_token", "smtp_auth_password", "smtp_auth_secret"}
    | {"telegram_bot_token", "token", "token_id", "url", "user_key", "victorops_api_key"}
    | {"webhook_url", "wechat_api_secret"}
)
# a key of an integration newer than that list: its name says it (a ``*_file`` key is a path)
_SECRET_KEY_WORDS = re.compile(r"(?i)(password|secret|token|credential|(^|_)key|url)$")
_URL_USERINFO = re.compile(r"://[^/@\s]*@")
_SECRET_SECTIONS = ("global", "receivers")


def alertmanager_secrets(doc: object) -> tuple[object, int]:
    """An alertmanager.yml's parsed document with every secret masked as ``<secret>``, as
    Alertmanager shows its own config, and how many values were masked.

    Masked, in ``global`` and ``receivers`` (where Alertmanager keeps its credentials; the
    routes, inhibit rules and time intervals hold none): the value of every key the
    configuration reference types ``<secret>`` or ``<tmpl_secret>``
    (``ALERTMANAGER_SECRET_KEYS``: ``auth_password``, ``bot_token``, webhook and Slack
    URLs...), of any key named like one (ending in password, secret, token, credential,
    key or url; a ``*_file`` path is not a secret), whole lists and maps under such a key
    (``secrets: [...]``), and any URL holding a user and password. Booleans, numbers and
    empty values stay: they hide nothing. ``doc`` is not changed."""
    if not isinstance(doc, dict):
        return doc, 0
    count = 0

    def mask(value: object) -> object:
        nonlocal count
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if value is None or value == "" or isinstance(value, bool | int | float):
            return value
        count += 1
        return SECRET_PLACEHOLDER

    def walk(value: object) -> object:
        nonlocal count
        if isinstance(value, dict):
            return {k: mask(v) if _secret_key(k) else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and _URL_USERINFO.search(value):
            count += 1
            return SECRET_PLACEHOLDER
        return value

    out = {k: walk(v) if k in _SECRET_SECTIONS else v for k, v in doc.items()}
    return out, count


def _secret_key(key: object) -> bool:
    if not isinstance(key, str) or key.endswith("_file"):
        return False
    return key in ALERTMANAGER_SECRET_KEYS or bool(_SECRET_KEY_WORDS.search(key))
