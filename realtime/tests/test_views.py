"""The streams REST API (docs/protocol.md §2) beyond the authorization matrix."""

import pytest

from realtime.models import Membership, Message
from realtime.publish import publish_to_room, publish_to_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_rooms_lists_public_rooms_and_private_ones_of_the_user(api, carol, rooms):
    response = api(carol).get("/api/rooms")
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "lobby", "title": "Lobby", "public": True, "member": True},
        {"slug": "plaza", "title": "Plaza", "public": True, "member": False},
    ]


def test_rooms_needs_a_token(client, rooms):
    response = client.get("/api/rooms")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_joining_a_public_room_is_idempotent_and_allows_posting(api, carol, rooms):
    client = api(carol)
    assert (
        client.post("/api/rooms/plaza/messages", {"data": 1}, format="json").status_code
        == 403
    )
    for _ in range(2):
        assert client.post("/api/rooms/plaza/membership").status_code == 204
    assert Membership.objects.filter(user=carol, room__slug="plaza").count() == 1
    assert (
        client.post("/api/rooms/plaza/messages", {"data": 1}, format="json").status_code
        == 201
    )


@pytest.mark.parametrize("slug", ["secret", "team", "nowhere", "Bad%20Slug"])
def test_joining_a_private_or_unknown_room_is_404(api, carol, rooms, slug):
    response = api(carol).post(f"/api/rooms/{slug}/membership")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert not Membership.objects.filter(user=carol, room__public=False).exists()


def test_a_member_joining_his_private_room_is_404_too(api, alice, rooms):
    """Only public rooms are joined through the API; members of a private
    room are added to it, and stay members."""
    assert api(alice).post("/api/rooms/team/membership").status_code == 404
    assert Membership.objects.filter(user=alice, room__slug="team").exists()


def test_joining_a_public_room_twice_is_a_no_op(api, carol, rooms):
    for _ in range(2):
        assert api(carol).post("/api/rooms/plaza/membership").status_code == 204
    assert Membership.objects.filter(user=carol, room__slug="plaza").count() == 1


def test_leaving_is_204_even_when_not_a_member(api, alice, carol, rooms):
    assert api(alice).delete("/api/rooms/team/membership").status_code == 204
    assert not Membership.objects.filter(user=alice, room__slug="team").exists()
    assert api(carol).delete("/api/rooms/plaza/membership").status_code == 204
    assert api(carol).delete("/api/rooms/secret/membership").status_code == 404
    assert api(carol).delete("/api/rooms/nowhere/membership").status_code == 404


def test_history_pages_with_after_and_limit(api, alice, rooms):
    for n in range(1, 8):
        publish_to_room(room=rooms["team"], sender=alice, data=n)
    client = api(alice)
    latest = client.get("/api/rooms/team/messages?limit=3").json()
    assert [m["id"] for m in latest] == [5, 6, 7]
    assert latest[0] == {
        "type": "message",
        "stream": "room:team",
        "id": 5,
        "sender": {"id": alice.pk, "username": "alice"},
        "data": 5,
        "ts_ms": latest[0]["ts_ms"],
    }
    page = client.get("/api/rooms/team/messages?after=2&limit=2").json()
    assert [m["id"] for m in page] == [3, 4]
    assert len(client.get("/api/rooms/team/messages").json()) == 7


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=x", "after=-1", "after=1.5", "after=", "limit="],
)
def test_history_rejects_bad_parameters(api, alice, rooms, query):
    response = api(alice).get(f"/api/rooms/team/messages?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize(
    "body", [{}, {"text": "x"}, [1], "plain", {"data": "\u0000"}, {"data": "x" * 70000}]
)
def test_post_rejects_bad_bodies(api, alice, rooms, body):
    response = api(alice).post("/api/rooms/team/messages", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not Message.objects.exists()


def test_post_accepts_any_json_including_null(api, alice, rooms):
    client = api(alice)
    for data in (None, 0, "s", [1, {"a": None}], {"nested": {"x": [True]}}):
        response = client.post(
            "/api/rooms/team/messages", {"data": data}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["data"] == data


def test_staff_notify_stores_on_the_users_stream(api, make_user, alice):
    staff = make_user("root", "pw-root-123", is_staff=True)
    response = api(staff).post(
        f"/api/users/{alice.pk}/notify", {"data": {"text": "hi"}}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["stream"] == "user" and response.json()["sender"] is None
    assert Message.objects.get(stream=f"user:{alice.pk}").data == {"text": "hi"}
    for unknown in ("999999", "9" * 30):
        response = api(staff).post(
            f"/api/users/{unknown}/notify", {"data": 1}, format="json"
        )
        assert response.status_code == 404


def test_non_staff_cannot_notify(api, alice, bob):
    response = api(alice).post(
        f"/api/users/{bob.pk}/notify", {"data": 1}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Message.objects.exists()


def test_user_stream_history_is_the_owners_only(api, alice, bob):
    publish_to_user(user=alice, data="one")
    assert [
        m["data"] for m in api(alice).get(f"/api/users/{alice.pk}/messages").json()
    ] == ["one"]
    assert api(bob).get(f"/api/users/{alice.pk}/messages").status_code == 404
    assert (
        api(alice).get("/api/users/99999999999999999999999/messages").status_code == 404
    )


def test_schema_documents_the_streams_api(client):
    response = client.get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/rooms",
        "/api/rooms/{slug}/membership",
        "/api/rooms/{slug}/messages",
        "/api/users/{user_id}/notify",
    ]:
        assert path in paths, path
    post = paths["/api/rooms/{slug}/messages"]["post"]
    assert "201" in post["responses"]
