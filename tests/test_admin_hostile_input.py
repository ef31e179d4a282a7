"""The admin given what its own pages never send, and what each staff user may
do there: hand-made queries and ids answer 200, 302, 400 or 404, never a 500;
no filter spells out a stored secret; an action needs the permission to change
what it changes; the admin's ways of retiring a user revoke his sessions."""

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import AuthSession, ServiceKey, SessionRevocation, User
from accounts.service_keys import service_key_create
from realtime.models import Membership, Message, Room
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)

SURROGATE = "%ED%A0%80"  # a lone UTF-16 surrogate, percent-encoded as UTF-8
FINE = {200, 302, 400, 404}

LISTS = [
    "/admin/accounts/user/",
    "/admin/accounts/authsession/",
    "/admin/accounts/sessionrevocation/",
    "/admin/accounts/servicekey/",
    "/admin/realtime/room/",
    "/admin/realtime/membership/",
    "/admin/realtime/message/",
    "/admin/auth/group/",
]

BIG = "9" * 23
QUERIES = [
    f"q={SURROGATE}",
    "q=%00",
    "q=" + "x" * 20000,
    "q=%FF%FE",
    "o=abc",
    "o=99",
    "o=1.-x",
    "o=" + "9" * 40,
    "p=abc",
    "p=-1",
    "p=" + "9" * 40,
    "e=1",
    f"e={SURROGATE}",
    f"_to_field={SURROGATE}",
    "_to_field=password",
    f"_changelist_filters={SURROGATE}",
    f"_facets={SURROGATE}",
    f"state={SURROGATE}",
    f"revoke_reason__exact={SURROGATE}",
    "created_at__gte=bogus",
    "created_at__lt=2020-99-99",
    "public__exact=maybe",
    f"role__exact={SURROGATE}",
    "room__id__exact=abc",
    "room__id__exact=" + "9" * 40,
    f"stream=room:{SURROGATE}",
    "stream=" + "r" * 5000,
    "revoked_at__isempty=bogus",
    "groups__id__exact=abc",
    "user__password__startswith=p",
    # Lookups no filter of these pages offers, which fail when the query
    # runs: a year out of range, a regex that does not compile, an integer
    # beyond the column, a JSON lookup SQLite has not, text in an inet.
    "created_at__year=0",
    "date_joined__year=99999",
    "revoked_at__iso_year=0",
    "slug__regex=[",
    "username__regex=(",
    "name__regex=(",
    "stream__regex=(",
    f"user_id={BIG}",
    f"user={BIG}",
    f"user_id__in=1,{BIG}",
    f"id__in={BIG}",
    "data__contains=x",
    "client_address=x",
]

OBJECT_PAGES = [
    "/admin/accounts/user/{}/change/",
    "/admin/accounts/user/{}/password/",
    "/admin/accounts/user/{}/history/",
    "/admin/accounts/user/{}/delete/",
    "/admin/accounts/authsession/{}/change/",
    "/admin/accounts/authsession/{}/delete/",
    "/admin/accounts/servicekey/{}/change/",
    "/admin/accounts/sessionrevocation/{}/change/",
    "/admin/realtime/room/{}/change/",
    "/admin/realtime/room/{}/delete/",
    "/admin/realtime/membership/{}/change/",
    "/admin/realtime/message/{}/change/",
]

NO_KEYS = ["abc", SURROGATE, "9" * 40, "-1", "1.5", "%00"]


@pytest.fixture
def data(alice, bob, open_session):
    open_session(alice)
    service_key_create(name="billing")
    room = Room.objects.create(slug="team", title="Team")
    Membership.objects.create(room=room, user=alice)
    return room


@pytest.mark.parametrize("url", LISTS)
def test_a_hand_made_list_query_is_never_a_500(admin_client, data, url):
    for query in QUERIES:
        response = admin_client.get(f"{url}?{query}")
        assert response.status_code in FINE, (url, query[:40])


@pytest.mark.parametrize("url", LISTS)
def test_every_filter_a_list_offers_still_answers(admin_client, data, url):
    """What the admin's own pages send is never refused: each filter link of
    each list page answers 200."""
    page = admin_client.get(url)
    assert page.status_code == 200
    links = set(re.findall(r'href="(\?[^"]+)"', page.content.decode()))
    for link in links:
        query = html.unescape(link)
        assert admin_client.get(f"{url}{query}").status_code == 200, (url, query)


@pytest.mark.parametrize("page", OBJECT_PAGES)
def test_an_object_id_that_is_no_key_is_never_a_500(admin_client, data, page):
    for bad in NO_KEYS:
        response = admin_client.get(page.format(bad))
        assert response.status_code in FINE, page.format(bad)


def test_forms_given_lone_surrogates_answer_with_the_form(admin_client, data, alice):
    """Sent raw: Django decodes a broken UTF-8 body with replacement characters."""
    s = SURROGATE
    bodies = {
        "/admin/realtime/room/add/": f"slug={s}&title={s}"
        "&memberships-TOTAL_FORMS=0&memberships-INITIAL_FORMS=0",
        f"/admin/realtime/room/{data.pk}/change/": f"slug=team&title={s}"
        "&memberships-TOTAL_FORMS=1&memberships-INITIAL_FORMS=1"
        f"&memberships-0-id={s}&memberships-0-user={s}&memberships-0-role={s}",
        "/admin/realtime/membership/add/": f"user={s}&room={s}&role={s}",
        "/admin/accounts/user/add/": f"username={s}&password1={s}&password2={s}",
        f"/admin/accounts/user/{alice.pk}/password/": f"password1={s}&password2={s}",
        "/admin/accounts/authsession/": f"action={s}&_selected_action={s}",
    }
    for url, body in bodies.items():
        response = admin_client.post(
            url, body, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code in FINE, url
    assert list(Room.objects.values_list("slug", flat=True)) == ["team"]


@pytest.mark.parametrize(
    "slug", ["Team", "a" * 65, "é", "a b", "-a", "a:b", "a.b", "１", "a/b", "ǅ"]
)
def test_a_room_slug_no_client_could_subscribe_to_is_refused(admin_client, slug):
    response = admin_client.post(
        "/admin/realtime/room/add/",
        {
            "slug": slug,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and response.context["errors"]
    assert not Room.objects.exists()


def test_the_service_key_digest_cannot_be_filtered_on(admin_client):
    """A prefix filter that lists the key or not would spell out its digest."""
    service_key_create(name="billing")
    digest = ServiceKey.objects.get().digest
    for query in [f"digest__startswith={digest[0]}", f"digest={digest}"]:
        response = admin_client.get(f"/admin/accounts/servicekey/?{query}")
        assert response.status_code == 400, query


def test_staff_who_may_only_view_users_cannot_notify_them(make_user, alice):
    """Notifying stores a message on each user's stream: it needs the right to
    add messages, not only to view users."""
    viewer = make_user("viewer", "pw-viewer-123", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_user"))
    client = Client()
    client.force_login(viewer)
    listing = client.get("/admin/accounts/user/").content.decode()
    assert "send_notification" not in listing
    run_action(
        client, "/admin/accounts/user/", "send_notification", [alice.pk], text="hi"
    )
    assert not Message.objects.exists()
    viewer.user_permissions.add(Permission.objects.get(codename="add_message"))
    client.force_login(User.objects.get(pk=viewer.pk))
    run_action(
        client, "/admin/accounts/user/", "send_notification", [alice.pk], text="hi"
    )
    assert Message.objects.count() == 1


def test_unticking_active_in_the_user_form_revokes_his_sessions(
    admin_client, alice, open_session
):
    session = open_session(alice).session
    form = (
        admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")
        .context["adminform"]
        .form
    )
    post = {
        name: value
        for name, value in form.initial.items()
        if value is not None
        and name not in {"password", "groups", "user_permissions", "is_active"}
    }
    post.pop("date_joined")
    post.pop("last_login", None)
    post.update(
        date_joined_0=alice.date_joined.strftime("%Y-%m-%d"),
        date_joined_1=alice.date_joined.strftime("%H:%M:%S"),
        **{"auth_sessions-TOTAL_FORMS": "1", "auth_sessions-INITIAL_FORMS": "1"},
        **{"auth_sessions-0-id": str(session.pk), "auth_sessions-0-user": alice.pk},
    )
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/change/", post)
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.revoke_reason == "deactivated" and session.revoked_at is not None


def test_delete_selected_users_revokes_their_sessions(
    admin_client, alice, bob, open_session
):
    sids = [open_session(user).session.sid for user in (alice, bob)]
    run_action(
        admin_client,
        "/admin/accounts/user/",
        "delete_selected",
        [alice.pk, bob.pk],
        post="yes",
    )
    assert not User.objects.filter(pk__in=[alice.pk, bob.pk]).exists()
    logged = dict(SessionRevocation.objects.values_list("sid", "reason"))
    assert logged == {sid: "user_deleted" for sid in sids}
    assert not AuthSession.objects.exists()
