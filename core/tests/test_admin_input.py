"""Admin requests with values the database cannot take are 400, not 500.

core/admin_input.py: an action's selection that is no primary key, and
a NUL anywhere (PostgreSQL's text cannot hold one), sent by a staff user.
"""

import pytest

from accounts.models import AuthSession
from accounts.services import session_open
from realtime.models import Room

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    ("/admin/accounts/user/", "revoke_sessions"),
    ("/admin/accounts/authsession/", "revoke"),
    ("/admin/accounts/servicekey/", "revoke"),
    ("/admin/realtime/room/", "delete_selected"),
    ("/admin/auth/group/", "delete_selected"),
]


@pytest.mark.parametrize(("url", "action"), CHANGELISTS)
@pytest.mark.parametrize(
    "selected",
    [["abc"], ["1", "abc"], ["9" * 20], ["1.5"], ["\x00"]],
    ids=["word", "one-bad", "beyond-bigint", "decimal", "nul"],
)
def test_an_action_on_objects_that_cannot_exist_is_a_400(
    admin_client, url, action, selected
):
    response = admin_client.post(
        url, {"action": action, "_selected_action": selected, "post": "yes"}
    )
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        "q=%00",
        "stream=room%00",
        "revoke_reason__exact=%00",
        "reason__exact=%00",
        "role__exact=%00",
        "o=1%00",
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/authsession/",
        "/admin/accounts/sessionrevocation/",
        "/admin/realtime/message/",
        "/admin/realtime/membership/",
    ],
)
def test_a_nul_in_a_filter_or_search_is_a_400(admin_client, url, query):
    assert admin_client.get(f"{url}?{query}").status_code == 400


def test_a_nul_in_an_autocomplete_term_is_a_400(admin_client):
    answer = admin_client.get(
        "/admin/autocomplete/?app_label=realtime&model_name=membership"
        "&field_name=user&term=%00"
    )
    assert answer.status_code == 400


def test_a_valid_action_still_runs(admin_client, make_user):
    user = make_user("victim", "pw-victim-123")
    session_open(user=user, user_agent="pytest")
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "revoke_sessions", "_selected_action": [str(user.pk)]},
    )
    assert response.status_code == 302
    assert not AuthSession.objects.filter(user=user, revoked_at=None).exists()


def test_anyone_else_is_sent_to_the_login_page_as_before(client):
    response = client.get("/admin/accounts/authsession/?q=%00")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def room_form(member: str) -> dict:
    """A new room's form, with one membership whose user is `member`."""
    return {
        "slug": "new-room",
        "title": "New room",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": member,
        "memberships-0-role": "member",
    }


@pytest.mark.parametrize("value", ["abc", "1.5", "9" * 20])
@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/admin/realtime/room/add/", room_form),
        ("/admin/realtime/membership/add/", lambda v: {"user": v, "room": v}),
    ],
    ids=["room-inline", "membership"],
)
def test_a_form_with_no_key_in_an_autocomplete_field_says_so(
    admin_client, url, form, value
):
    """The form's error is shown; the widget no longer looks the value up."""
    response = admin_client.post(url, {**form(value), "role": "member"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_a_form_with_a_real_member_still_saves_it(admin_client, make_user):
    member = make_user("member-of-new-room")
    response = admin_client.post("/admin/realtime/room/add/", room_form(str(member.pk)))
    assert response.status_code == 302
    assert list(
        Room.objects.get(slug="new-room").memberships.values_list("user", flat=True)
    ) == [member.pk]
