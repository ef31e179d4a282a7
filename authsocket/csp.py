"""Content-Security-Policy of every page we serve, and which middleware sends it.

Tokens live in the page's memory, so one injected script would take them: the
policy allows scripts from this origin only (no inline code, no eval), and
sockets to this server only. Django 6 sends the header itself; Django 5.2
needs django-csp.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

SELF = "'self'"
NONE = "'none'"

# CSP's host-source grammar (CSP3 §2.3.1): no IPv6 literal, no port here.
_CSP_HOST = re.compile(r"^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$")
_WS_SCHEME = {"http": "ws", "https": "wss"}


def _host_sources(pattern: str) -> list[str]:
    """CSP host expressions for a Django host pattern (`.example.com` = domain + subdomains)."""
    host = pattern.strip().lower().rstrip(".")
    hosts = [host.lstrip("."), "*" + host] if host.startswith(".") else [host]
    # `*` (any host) and IPv6 literals have no CSP spelling: 'self' covers them.
    return [h for h in hosts if _CSP_HOST.match(h)]


def _origin_sources(origin: str) -> list[str]:
    """ws:/wss: sources for one allowed origin, in Channels' pattern syntax."""
    text = origin.strip().lower()
    parsed = urlparse(text if "://" in text else "//" + text)
    try:
        port = parsed.port
    except ValueError:
        return []
    if not parsed.scheme:  # a bare host: any scheme, any port, as Channels does
        schemes, suffix = ["ws", "wss"], ":*"
    elif parsed.scheme in _WS_SCHEME:
        schemes, suffix = [_WS_SCHEME[parsed.scheme]], f":{port}" if port else ""
    else:
        return []
    return [
        f"{scheme}://{host}{suffix}"
        for host in _host_sources(parsed.hostname or "")
        for scheme in schemes
    ]


def websocket_sources(
    *, allowed_hosts: list[str], allowed_origins: list[str]
) -> list[str]:
    """ws:/wss: sources for the pages' sockets: the hosts and origins the server accepts.

    'self' matches ws: only in browsers that implement CSP3 on that point, so
    the socket endpoints are listed too. Django ignores a host's port, hence
    any port; an origin with a scheme keeps its own scheme and port.
    """
    sources = [
        source
        for pattern in [*allowed_hosts, *allowed_origins]
        for source in _origin_sources(pattern)
    ]
    return list(dict.fromkeys(sources))


def csp_directives(*, websocket_sources: list[str]) -> dict[str, list[str]]:
    """The one policy: this origin only, nothing inline, never framed."""
    return {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # The demo's empty favicon and the API docs' icons are data: URLs.
        "img-src": [SELF, "data:"],
        "connect-src": [SELF, *websocket_sources],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }


@dataclass(frozen=True)
class CspSettings:
    """Where the policy goes: one middleware and one Django setting."""

    middleware: str
    setting: str
    value: dict[str, Any]


def csp_settings(
    directives: dict[str, list[str]], *, django_version: tuple
) -> CspSettings:
    """Django 6's own CSP middleware when it exists, else django-csp 4's."""
    if tuple(django_version[:2]) >= (6, 0):
        return CspSettings(
            middleware="django.middleware.csp.ContentSecurityPolicyMiddleware",
            setting="SECURE_CSP",
            value=dict(directives),
        )
    return CspSettings(
        middleware="csp.middleware.CSPMiddleware",
        setting="CONTENT_SECURITY_POLICY",
        value={"DIRECTIVES": dict(directives)},
    )
