"""Render deploy/nginx/authsocket.conf for one machine.

    python deploy/nginx/render.py --listen 80 \
        --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002 \
        --static-root /srv/authsocket/staticfiles \
        > /etc/nginx/sites-available/authsocket.conf

With --tls-cert and --tls-key the server listens with TLS and a second server
on --http-listen (default 80) only redirects to https.

Standard library only, so it runs before the project's venv exists.
"""

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("authsocket.conf")
STATIC_BLOCK = re.compile(
    r"^[ \t]*# @STATIC_BEGIN@\n.*?^[ \t]*# @STATIC_END@\n", re.DOTALL | re.MULTILINE
)
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
LISTEN_LINE = re.compile(r"^(?P<indent>[ \t]*)listen @LISTEN@;\n", re.MULTILINE)
REDIRECT_SERVER = """
# Plain HTTP only redirects to https (rendered with --tls-cert).
server {
    listen @HTTP_LISTEN@;
    server_name @SERVER_NAME@;
    access_log @ACCESS_LOG@ authsocket;
    error_log @ERROR_LOG@ crit;
    return 301 https://$host$request_uri;
}
"""


def render(
    *,
    listen: str,
    upstreams: list[str],
    server_name: str = "_",
    static_root: str | None = None,
    access_log: str = "/var/log/nginx/authsocket.access.log",
    error_log: str = "/var/log/nginx/authsocket.error.log",
    template: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    http_listen: str = "80",
) -> str:
    """Return the config text; raises ValueError on a missing value."""
    if not upstreams:
        raise ValueError("at least one --upstream host:port is needed")
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    text = TEMPLATE.read_text() if template is None else template
    if tls_cert:
        text = _with_tls(text)
    if static_root:
        text = re.sub(r"^[ \t]*# @STATIC_(BEGIN|END)@\n", "", text, flags=re.MULTILINE)
    else:
        text = STATIC_BLOCK.sub("", text)
    values = {
        "LISTEN": listen,
        "SERVER_NAME": server_name,
        "UPSTREAM_SERVERS": "\n".join(
            f"    server {u} max_fails=1 fail_timeout=10s;" for u in upstreams
        ),
        "STATIC_ROOT": (static_root or "").rstrip("/"),
        "ACCESS_LOG": access_log,
        "ERROR_LOG": error_log,
        "TLS_CERT": tls_cert or "",
        "TLS_KEY": tls_key or "",
        "HTTP_LISTEN": http_listen,
    }

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise ValueError(f"unknown placeholder @{name}@ in the template")
        return values[name]

    header = "# Rendered by deploy/nginx/render.py: edit the template, not this.\n"
    return header + PLACEHOLDER.sub(fill, text)


def _with_tls(text: str) -> str:
    """Listen with TLS, name the certificate, add the redirecting HTTP server."""

    def tls_lines(match):
        indent = match.group("indent")
        return (
            f"{indent}listen @LISTEN@ ssl;\n"
            f"{indent}ssl_certificate @TLS_CERT@;\n"
            f"{indent}ssl_certificate_key @TLS_KEY@;\n"
        )

    return LISTEN_LINE.sub(tls_lines, text, count=1) + REDIRECT_SERVER


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="80", help="nginx listen value")
    parser.add_argument(
        "--upstream",
        action="append",
        dest="upstreams",
        help="a daphne host:port (repeat for each process)",
    )
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--static-root", help="serve /static/ from this directory")
    parser.add_argument("--access-log", default="/var/log/nginx/authsocket.access.log")
    parser.add_argument("--error-log", default="/var/log/nginx/authsocket.error.log")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve https")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--http-listen", default="80", help="with TLS: where plain HTTP redirects"
    )
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = render(
            listen=args.listen,
            upstreams=args.upstreams or ["127.0.0.1:8001", "127.0.0.1:8002"],
            server_name=args.server_name,
            static_root=args.static_root,
            access_log=args.access_log,
            error_log=args.error_log,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            http_listen=args.http_listen,
        )
    except ValueError as exc:  # a missing or mismatched option: usage, exit 2
        parser.error(str(exc))
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:  # a missing directory, no permission: say so
            parser.exit(
                1, f"{parser.prog}: cannot write {args.output}: {exc.strerror}\n"
            )
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
