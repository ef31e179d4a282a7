"""The nginx site never proxies /metrics, whatever the upstream would answer."""

import contextlib
import urllib.error
import urllib.request

import pytest

from tests.http import QuietHandler, http_origin

from .processes import NginxProcess


class AnswersEverything(QuietHandler):
    """An upstream that would hand its figures to anyone who asks."""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.answer(200, b"authsocket_open_sockets 1.0\n")


@contextlib.contextmanager
def upstream():
    with http_origin(AnswersEverything) as origin:
        yield int(origin.rsplit(":", 1)[1])


def status_of(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer any-token"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.services
def test_nginx_answers_404_for_metrics_and_proxies_the_rest(nginx_available, tmp_path):
    with upstream() as port:
        nginx = NginxProcess(tmp_path, [port]).start()
        try:
            for path in ("/metrics", "/metrics?format=text", "/%6Detrics", "//metrics"):
                assert status_of(nginx.http + path) == 404, path
            assert status_of(nginx.http + "/metricsx") == 200  # the upstream answers
        finally:
            nginx.stop()
