"""deploy/nginx: the template renders, nginx accepts it, nothing logs a query."""

import importlib.util
import re
import subprocess
import sys

import pytest

from .processes import ROOT, NginxProcess

# deploy/nginx/render.py is a stand-alone script, not a package: load it by path.
_spec = importlib.util.spec_from_file_location(
    "authsocket_nginx_render", ROOT / "deploy" / "nginx" / "render.py"
)
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)

COMPOSE_ARGS = {
    "listen": "80",
    "upstreams": ["daphne1:8000", "daphne2:8000"],
    "access_log": "/var/log/nginx/access.log",
    "error_log": "/var/log/nginx/error.log",
}


def test_every_placeholder_is_filled():
    text = render.render(listen="8080", upstreams=["127.0.0.1:8001"])
    assert "@" not in re.sub(r"#.*", "", text)
    assert "server 127.0.0.1:8001 " in text
    assert "listen 8080;" in text


def test_static_block_only_when_a_root_is_given():
    assert "location /static/" not in render.render(listen="80", upstreams=["a:1"])
    text = render.render(listen="80", upstreams=["a:1"], static_root="/srv/s/")
    assert "alias /srv/s/;" in text


def test_no_upstream_is_an_error():
    with pytest.raises(ValueError, match="upstream"):
        render.render(listen="80", upstreams=[])


def test_access_log_format_never_contains_the_query_string():
    text = render.render(listen="80", upstreams=["a:1"])
    log_format = re.search(r"log_format authsocket (.*?);", text, re.DOTALL).group(1)
    for leaky in (
        "$request ",
        '$request"',
        "$request_uri",
        "$args",
        "$query_string",
        "$arg_",
        "$http_referer",
        "$is_args",
    ):
        assert leaky not in log_format, leaky
    assert "$uri" in log_format
    # Every access_log directive uses that format, never the default "combined".
    for line in re.findall(r"^\s*access_log (.*);", text, re.MULTILINE):
        assert line.endswith(" authsocket") or line == "off", line


def test_websocket_upgrade_and_forwarded_headers_are_set():
    text = render.render(listen="80", upstreams=["a:1"])
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $authsocket_connection;" in text
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in re.sub(r"#.*", "", text)
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert re.search(r"location /ws/ \{[^}]*proxy_read_timeout 1h;", text)


def test_tls_listens_with_the_certificate_and_http_only_redirects():
    text = render.render(
        listen="443",
        upstreams=["a:1"],
        server_name="chat.example.org",
        tls_cert="/etc/ssl/chat.pem",
        tls_key="/etc/ssl/chat.key",
        http_listen="8080",
    )
    assert "@" not in re.sub(r"#.*", "", text)
    assert re.search(
        r"listen 443 ssl;\n\s*ssl_certificate /etc/ssl/chat.pem;\n"
        r"\s*ssl_certificate_key /etc/ssl/chat.key;",
        text,
    )
    redirect = text[text.rindex("server {") :]
    assert "listen 8080;" in redirect
    assert "return 301 https://$host$request_uri;" in redirect
    assert "proxy_pass" not in redirect


def test_tls_needs_both_files():
    with pytest.raises(ValueError, match="together"):
        render.render(listen="443", upstreams=["a:1"], tls_cert="/c.pem")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--tls-cert", "/c.pem"], 2, "--tls-cert and --tls-key go together"),
        (["-o", "/nonexistent/authsocket.conf"], 1, "cannot write /nonexistent/"),
    ],
    ids=["tls-key-missing", "output-unwritable"],
)
def test_the_script_answers_a_bad_invocation_with_a_message_not_a_traceback(
    args, code, message
):
    """docs/deploy.md §2.8 and §3 have operators run the script by hand: a
    missing --tls-key or an -o it cannot write was a Python traceback."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "nginx" / "render.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_compose_config_is_rendered_from_the_template():
    committed = (ROOT / "deploy" / "nginx" / "docker.conf").read_text()
    assert committed == render.render(**COMPOSE_ARGS), (
        "deploy/nginx/docker.conf is stale: run python deploy/nginx/render.py "
        "--listen 80 --upstream daphne1:8000 --upstream daphne2:8000 "
        "--access-log /var/log/nginx/access.log --error-log /var/log/nginx/error.log "
        "-o deploy/nginx/docker.conf"
    )


@pytest.mark.services
def test_nginx_accepts_the_rendered_config(nginx_available, tmp_path):
    nginx = NginxProcess(tmp_path, [8001, 8002])
    main = nginx.render()
    result = subprocess.run(
        [*nginx.command(main), "-t"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
