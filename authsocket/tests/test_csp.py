"""Every HTML page carries the strict Content-Security-Policy (authsocket/csp.py)."""

import django
import pytest
from django.conf import settings

from authsocket.csp import csp_directives, csp_settings, websocket_sources
from tests.servers import manage, server_env

REQUIRED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def assert_strict(response) -> None:
    directives = policy(response)
    for name, sources in REQUIRED.items():
        assert set(directives[name]) == sources, (name, directives)
    assert "'self'" in directives["connect-src"]
    assert {"ws://127.0.0.1:*", "wss://127.0.0.1:*"} <= set(directives["connect-src"])
    everything = " ".join(source for s in directives.values() for source in s)
    for loophole in ("'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"):
        assert loophole not in everything.split(), directives


def assert_strict_page(response) -> None:
    """An HTML page served under the strict policy."""
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert_strict(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/api/docs/", "/admin/login/"])
def test_every_public_html_page_sends_the_strict_policy(client, path):
    assert_strict_page(client.get(path))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/user/add/",
        "/admin/realtime/room/add/",
        "/admin/password_change/",
    ],
)
def test_every_admin_page_sends_the_strict_policy(admin_client, path):
    assert_strict_page(admin_client.get(path))


@pytest.mark.django_db
def test_a_redirect_to_the_admin_login_has_the_policy_too(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert_strict(response)


def test_sockets_to_the_allowed_hosts_any_port_both_schemes():
    assert websocket_sources(
        allowed_hosts=["chat.example.org", ".example.net"], allowed_origins=[]
    ) == [
        "ws://chat.example.org:*",
        "wss://chat.example.org:*",
        "ws://example.net:*",
        "wss://example.net:*",
        "ws://*.example.net:*",
        "wss://*.example.net:*",
    ]


def test_allowed_origins_keep_their_scheme_and_port():
    assert websocket_sources(
        allowed_hosts=[],
        allowed_origins=[
            "https://app.example.org",
            "http://dev.example.org:8080",
            "app.example.org",
        ],
    ) == [
        "wss://app.example.org",
        "ws://dev.example.org:8080",
        "ws://app.example.org:*",
        "wss://app.example.org:*",
    ]


@pytest.mark.parametrize(
    "pattern", ["*", "[::1]", "ftp://files.example.org", "https://a.org:x", "a;b"]
)
def test_what_csp_cannot_spell_is_left_to_self(pattern):
    # Any host, IPv6 literals, other schemes, garbage: never a broken header.
    assert websocket_sources(allowed_hosts=[pattern], allowed_origins=[pattern]) == []


def test_django_6_uses_its_own_middleware_and_secure_csp():
    directives = csp_directives(websocket_sources=[])
    chosen = csp_settings(directives, django_version=(6, 0, 0, "final", 0))
    assert chosen.middleware == "django.middleware.csp.ContentSecurityPolicyMiddleware"
    assert chosen.setting == "SECURE_CSP"
    assert chosen.value == directives


def test_django_5_2_uses_django_csp_4_settings():
    directives = csp_directives(websocket_sources=[])
    chosen = csp_settings(directives, django_version=(5, 2, 9, "final", 0))
    assert chosen.middleware == "csp.middleware.CSPMiddleware"
    assert chosen.setting == "CONTENT_SECURITY_POLICY"
    assert chosen.value == {"DIRECTIVES": directives}


def test_settings_pick_the_middleware_of_the_running_django():
    chosen = csp_settings({}, django_version=django.VERSION)
    security = settings.MIDDLEWARE.index(
        "django.middleware.security.SecurityMiddleware"
    )
    assert settings.MIDDLEWARE[security + 1] == chosen.middleware
    others = {
        "csp.middleware.CSPMiddleware",
        "django.middleware.csp.ContentSecurityPolicyMiddleware",
    }
    assert [m for m in settings.MIDDLEWARE if m in others] == [chosen.middleware]
    assert hasattr(settings, chosen.setting)


def test_deployment_hosts_and_origins_reach_the_header():
    env = server_env(
        "sqlite:///unused.sqlite3",
        DJANGO_ALLOWED_HOSTS="chat.example.org",
        AUTHSOCKET_ALLOWED_ORIGINS="https://app.example.org",
    )
    script = (
        "from django.test import Client;"
        "r = Client(HTTP_HOST='chat.example.org').get('/static/authsocket/demo.css');"
        "print(r['Content-Security-Policy'])"
    )
    # The shell prints its own banner first: the header is the last line.
    header = manage(env, "shell", "-c", script, timeout=60).strip().splitlines()[-1]
    directives = [d.strip() for d in header.split(";")]
    connect = next(d for d in directives if d.startswith("connect-src"))
    assert connect.split()[1:] == [
        "'self'",
        "ws://chat.example.org:*",
        "wss://chat.example.org:*",
        "wss://app.example.org",
    ]
