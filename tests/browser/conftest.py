"""Browser tests: headless Chromium (Selenium) against a real daphne process.

Each test gets its own server on a free port with a fresh SQLite database
(a copy of one migrated with ``demo_data`` once per run), so tests can set
``AUTHSOCKET_ACCESS_TTL`` and stop/start the server freely. Screenshots and
browser console logs go to ``artifacts/browser/<test name>/``. A test whose
browsers logged a Content-Security-Policy violation fails at teardown, unless
it took the violation with ``browsers.take_csp_violations()``.

Without /usr/bin/chromium and /usr/bin/chromedriver the tests are skipped with
the reason; under ``CI=true`` they fail instead, so CI cannot go green by
silently not running them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import DaphneServer, manage, server_env, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("AUTHSOCKET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AUTHSOCKET_CHROMEDRIVER", "/usr/bin/chromedriver")
DEMO_PASSWORD = "authsocket-demo"
WAIT = 10  # seconds for ordinary UI conditions


def _browser_missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: apt-get install {package}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip before any fixture (database, server) is built when there is no browser."""
    reason = _browser_missing()
    if not reason or os.environ.get("CI") == "true":
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _require_browser():
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {reason}")
        pytest.skip(reason)


# --- the server -----------------------------------------------------------------


@pytest.fixture
def notify():
    """Store a notification through the publishing service, not over HTTP.

    ``manage.py notify`` writes to the same database, so it works while the
    server is down; the message waits there for replay (docs/protocol.md §5).
    """

    def send(server: DaphneServer, username: str, text: str) -> None:
        manage(server.env, "notify", username, text)

    return send


@pytest.fixture
def artifacts(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def server_factory(migrated_template, tmp_path, artifacts):
    """Start a server with extra settings: ``server_factory(AUTHSOCKET_ACCESS_TTL=5)``.

    Served as ``make run`` serves the demo: ``authsocket.serve`` (SIGTERM
    drains with 4503) in debug mode, so static files come straight from
    ``static/`` and the refresh cookie is not ``Secure`` on plain http.
    """
    servers: list[DaphneServer] = []

    def start(**settings: str | int) -> DaphneServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        shutil.copyfile(migrated_template, workdir / "db.sqlite3")
        env = server_env(
            sqlite_url(workdir),
            DJANGO_DEBUG="1",
            **{key: str(value) for key, value in settings.items()},
        )
        server = DaphneServer(
            env,
            log_path=artifacts / f"daphne-{len(servers)}.log",
            module="authsocket.serve",
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory) -> DaphneServer:
    return server_factory()


# --- the browser ----------------------------------------------------------------


CSP_MESSAGE = re.compile(r"Content[- ]Security[- ]Policy", re.IGNORECASE)


def is_csp_violation(entry: dict) -> bool:
    """Chromium logs every refusal (and every unparsable policy) this way."""
    return bool(CSP_MESSAGE.search(entry.get("message", "")))


@functools.cache
def _chrome_class():
    from selenium import webdriver

    class Chrome(webdriver.Chrome):
        """Chrome that keeps each console entry read, whoever reads it (CSP check)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.console: list[dict] = []

        def get_log(self, log_type):
            entries = super().get_log(log_type)
            if log_type == "browser":
                self.console.extend(entries)
            return entries

    return Chrome


def new_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        # Every tab keeps real timers: token renewal must not depend on focus.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return _chrome_class()(service=Service(CHROMEDRIVER), options=options)


class DemoPage:
    """The demo page at `/` in one browser tab, driven like a user would."""

    def __init__(self, driver, server: DaphneServer, artifacts: Path, name: str):
        self.driver = driver
        self.server = server
        self.artifacts = artifacts
        self.name = name
        self.handle = driver.current_window_handle

    # navigation -------------------------------------------------------------

    def focus(self) -> DemoPage:
        if self.driver.current_window_handle != self.handle:
            self.driver.switch_to.window(self.handle)
        return self

    def open(self, query: str = "") -> DemoPage:
        self.focus()
        self.driver.get(self.server.http + "/" + query)
        self.wait_for(
            lambda d: d.execute_script("return document.body.dataset.ready"), WAIT
        )
        return self

    def login(self, username: str, password: str = DEMO_PASSWORD) -> DemoPage:
        from selenium.webdriver.common.by import By

        self.focus()
        self.wait_visible("#login-form")
        for field_id, value in (("username", username), ("password", password)):
            element = self.driver.find_element(By.ID, field_id)
            element.clear()
            element.send_keys(value)
        self.driver.find_element(By.ID, "login-submit").click()
        return self

    # waiting ----------------------------------------------------------------

    def wait_for(self, condition, timeout: float = WAIT, message: str = ""):
        from selenium.webdriver.support.ui import WebDriverWait

        self.focus()
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                condition, message
            )
        except Exception:
            self.screenshot("timeout")
            with contextlib.suppress(Exception):  # the page may be gone
                log = self.artifacts / f"{self.name}-connection-log.txt"
                log.write_text("\n".join(reversed(self.log_lines())))
            raise

    def wait_visible(self, css: str, timeout: float = WAIT):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait_for(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout, css
        )

    def state(self) -> str:
        self.focus()
        return self.driver.execute_script(
            "return document.getElementById('state').dataset.state"
        )

    def wait_state(self, *states: str, timeout: float = WAIT) -> str:
        def reached(_driver):
            current = self.state()
            return current if current in states else False

        return self.wait_for(
            reached, timeout, f"{self.name}: state never became {states}"
        )

    def js(self, script: str, *args):
        self.focus()
        return self.driver.execute_script(script, *args)

    def js_async(self, script: str, *args, timeout: float = WAIT):
        """Run `script` as an async function body; its return value comes back."""
        self.focus()
        self.driver.set_script_timeout(timeout)
        wrapper = (
            "const done = arguments[arguments.length - 1];"
            "(async (...args) => {"
            + script
            + "})(...Array.from(arguments).slice(0, -1))"
            ".then((value) => done({ok: value === undefined ? null : value}),"
            " (error) => done({error: String(error && (error.code || error.message) || error)}));"
        )
        result = self.driver.execute_async_script(wrapper, *args)
        if "error" in result:
            raise AssertionError(f"{self.name}: script failed: {result['error']}")
        return result["ok"]

    def round_trip(self) -> float:
        """A ping answered over the live socket; its round trip, in ms."""
        elapsed = self.js_async("return await window.authsocketDemo.client.ping();")
        assert 0 < elapsed < WAIT * 1000, f"{self.name}: ping took {elapsed} ms"
        return elapsed

    def client(self, expression: str):
        return self.js(
            "const c = window.authsocketDemo.client; return " + expression + ";"
        )

    # the page ----------------------------------------------------------------

    def messages(self, stream: str) -> list[dict]:
        return self.js(
            "return Array.from(document.querySelectorAll("
            "'[data-testid=\"messages-' + arguments[0] + '\"] > li')).map((li) => ({"
            "id: Number(li.dataset.id), from: li.querySelector('.from').textContent,"
            "text: li.querySelector('.text').textContent}));",
            stream,
        )

    def texts(self, stream: str) -> list[str]:
        return [message["text"] for message in self.messages(stream)]

    def wait_message(self, stream: str, text: str, timeout: float = WAIT) -> None:
        self.wait_for(
            lambda _d: text in self.texts(stream),
            timeout,
            f"{self.name}: {text!r} never appeared in {stream}",
        )

    def wait_pane(self, stream: str, timeout: float = WAIT):
        # The pane, not its message list: an empty list takes no room.
        return self.wait_visible(f'[data-testid="pane-{stream}"]', timeout)

    def send(self, stream: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        self.focus()
        field = self.driver.find_element(
            By.CSS_SELECTOR, f'[data-testid="send-input-{stream}"]'
        )
        field.send_keys(text)
        self.driver.find_element(
            By.CSS_SELECTOR, f'[data-testid="send-{stream}"]'
        ).click()
        # The box empties once the server answered `published`.
        self.wait_for(
            lambda _d: field.get_attribute("value") == "", WAIT, f"{text!r} not sent"
        )

    def click(self, testid: str) -> None:
        from selenium.webdriver.common.by import By

        self.focus()
        self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').click()

    def log_lines(self) -> list[str]:
        return self.js(
            "return Array.from(document.querySelectorAll('#log li')).map((li) => li.textContent);"
        )

    def screenshot(self, label: str) -> Path:
        self.focus()
        index = len(list(self.artifacts.glob("*.png"))) + 1
        path = self.artifacts / f"{index:02d}-{self.name}-{label}.png"
        self.driver.save_screenshot(str(path))
        return path


@dataclass
class Browsers:
    """Creates browser contexts (separate profiles: separate cookie jars)."""

    server_for_pages: DaphneServer | None
    artifacts: Path
    drivers: list = field(default_factory=list)
    pages: list[DemoPage] = field(default_factory=list)
    taken: list[dict] = field(default_factory=list)

    def context(self, name: str, server: DaphneServer | None = None) -> DemoPage:
        driver = new_driver()
        self.drivers.append(driver)
        page = DemoPage(driver, server or self.server_for_pages, self.artifacts, name)
        self.pages.append(page)
        return page

    def tab(self, of: DemoPage, name: str) -> DemoPage:
        """Another tab in the same context (shares cookies, locks, BroadcastChannel)."""
        of.focus()
        of.driver.switch_to.new_window("tab")
        page = DemoPage(of.driver, of.server, self.artifacts, name)
        self.pages.append(page)
        return page

    def signed_in(
        self, name: str, username: str, server: DaphneServer | None = None
    ) -> DemoPage:
        page = self.context(name, server).open()
        page.login(username)
        page.wait_state("live")
        return page

    def csp_violations(self) -> list[dict]:
        """Every CSP violation logged so far in any context, not yet taken."""
        for driver in self.drivers:
            with contextlib.suppress(Exception):  # the browser may already be gone
                driver.get_log("browser")
        taken = {id(entry) for entry in self.taken}
        return [
            entry
            for driver in self.drivers
            for entry in driver.console
            if is_csp_violation(entry) and id(entry) not in taken
        ]

    def take_csp_violations(self) -> list[dict]:
        """The violations a test provoked on purpose: the teardown check skips them."""
        violations = self.csp_violations()
        self.taken.extend(violations)
        return violations

    def close(self) -> list[dict]:
        """Quit every browser; returns the CSP violations nobody took."""
        violations = self.csp_violations()
        for index, driver in enumerate(self.drivers):
            with open(self.artifacts / f"console-{index}.json", "w") as out:
                json.dump(driver.console, out, indent=1)
            driver.quit()
        return violations


@pytest.fixture
def browsers(request, artifacts):
    """Browser contexts for the test; pass ``server`` first to bind pages to it."""
    server = (
        request.getfixturevalue("server") if "server" in request.fixturenames else None
    )
    pool = Browsers(server, artifacts)
    yield pool
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for page in pool.pages:
            with contextlib.suppress(Exception):
                page.screenshot("failure")
    violations = pool.close()
    if violations:
        pytest.fail(
            "Content-Security-Policy violations in the browser console:\n"
            + "\n".join(entry["message"] for entry in violations)
        )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def docs_screenshot():
    """Keep ``docs/screenshots/<name>.png`` current when asked (UPDATE_SCREENSHOTS=1).

    Opt-in so that an ordinary test run does not rewrite committed files.
    """

    def save(page: DemoPage, name: str, start: str | None = None) -> None:
        """From the top of the page, or from the element `start` selects."""
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            # Without a focus ring: the page as a reader meets it.
            page.js(
                "document.activeElement?.blur(); window.scrollTo(0, 0);"
                "if (arguments[0]) document.querySelector(arguments[0]).scrollIntoView();",
                start,
            )
            page.driver.save_screenshot(str(DOCS_SCREENSHOTS / f"{name}.png"))

    return save
