"""The HTTP API reference, reached from the demo's footer, renders offline."""

import pytest

pytestmark = pytest.mark.browser


def test_api_reference_link_renders_every_operation(server, browsers):
    page = browsers.context("reader").open()
    page.driver.get_log("browser")  # the demo's own signed-out 401 is not ours
    page.click("api-docs-link")
    page.wait_for(
        lambda d: d.execute_script(
            "return document.querySelectorAll('.opblock').length"
        ),
        message="Swagger UI rendered no operation",
    )
    assert page.driver.current_url == server.http + "/api/docs/"
    paths = page.js(
        "return [...document.querySelectorAll('.opblock-summary-path')]"
        ".map((e) => e.dataset.path)"
    )
    assert {"/api/auth/login", "/api/auth/ticket", "/api/me"} <= set(paths)
    # A script refused by a Content-Security-Policy is a console error too.
    errors = [e for e in page.driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
