"""The demo's "Online now" list against the real server's presence (§4.4).

tests/browser/test_demo_panels.py feeds presence frames to the page by hand;
here two people sign in and the list follows what the server sends.
"""

import pytest

from tests.browser.conftest import WAIT
from tests.browser.test_demo_panels import LOBBY, online

pytestmark = pytest.mark.browser


def test_the_online_list_shows_who_comes_and_goes(server, browsers):
    alice = browsers.signed_in("alice", "alice")
    alice.wait_pane(LOBBY)
    alice.wait_for(
        lambda _d: online(alice, LOBBY) == ["alice"],
        message="alice does not see herself online",
    )
    bob = browsers.signed_in("bob", "bob")
    bob.wait_pane(LOBBY)
    for page in (alice, bob):
        page.wait_for(
            lambda _d, page=page: online(page, LOBBY) == ["alice", "bob"],
            timeout=WAIT,
            message=f"{page.name} does not see both online",
        )
    alice.screenshot("online-now")
    bob.js("document.getElementById('logout').click();")
    alice.wait_for(
        lambda _d: online(alice, LOBBY) == ["alice"],
        message="bob is still listed after signing out",
    )
