"""The realtime admin: rooms with members, read-only messages, signals fire."""

import pytest

from realtime.models import Membership, Message, Room
from realtime.publish import publish_to_room, publish_to_user
from realtime.tests.conftest import TIMEOUT, db, subscribe
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)


def test_rooms_list_shows_member_counts(admin_client, rooms):
    response = admin_client.get("/admin/realtime/room/")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<td class="field-member_count">3</td>' in body  # lobby
    assert '<td class="field-member_count">2</td>' in body  # team


def test_room_page_has_memberships_inline(admin_client, rooms):
    response = admin_client.get(f"/admin/realtime/room/{rooms['team'].pk}/change/")
    assert response.status_code == 200
    assert "memberships-TOTAL_FORMS" in response.content.decode()


def test_messages_are_read_only_and_filter_by_stream(admin_client, alice, rooms):
    publish_to_room(room=rooms["team"], sender=alice, data="in team")
    publish_to_room(room=rooms["lobby"], sender=alice, data="in lobby")
    publish_to_user(user=alice, data="private")
    team = admin_client.get(
        "/admin/realtime/message/?stream=room:team"
    ).content.decode()
    assert "in team" in team and "in lobby" not in team and "private" not in team
    users = admin_client.get("/admin/realtime/message/?stream=user").content.decode()
    assert "private" in users and "in team" not in users
    assert admin_client.get("/admin/realtime/message/add/").status_code == 403
    message = Message.objects.first()
    response = admin_client.post(
        f"/admin/realtime/message/{message.pk}/change/", {"data": '"edited"'}
    )
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).data == message.data


def test_a_message_is_named_after_its_stream_as_clients_name_it(alice, rooms):
    room_message = publish_to_room(room=rooms["team"], sender=alice, data=1)
    user_message = publish_to_user(user=alice, data=2)
    assert str(Message.objects.get(pk=room_message.pk)) == "room:team #1"
    assert str(user_message) == f"user:{alice.pk} #1"


@pytest.mark.asyncio
async def test_unticking_public_in_the_admin_ends_non_member_subscriptions(
    admin_client, connect, carol, rooms
):
    socket = await connect(carol)
    await subscribe(socket, "room:plaza")
    room = rooms["plaza"]
    form = {
        "slug": "plaza",
        "title": "Plaza",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(await db(lambda: room.memberships.get().pk)),
        "memberships-0-room": str(room.pk),
        "memberships-0-user": str(await db(lambda: room.memberships.get().user_id)),
        "memberships-0-role": "member",
    }  # `public` unticked
    response = await db(
        admin_client.post, f"/admin/realtime/room/{room.pk}/change/", form
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not (await db(Room.objects.get, pk=room.pk)).public
    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        "type": "unsubscribed",
        "stream": "room:plaza",
        "reason": "forbidden",
    }


def test_notify_action_needs_a_text(admin_client, alice):
    response = run_action(
        admin_client, "/admin/accounts/user/", "send_notification", [alice.pk], text=" "
    )
    assert "Type the notification text first." in response.content.decode()
    assert not Message.objects.exists()


def test_adding_a_member_who_joined_since_the_page_was_shown_is_a_form_error(
    admin_client, alice, bob
):
    """Django checks the (user, room) constraint among the page's forms only:
    alice, who joined after the page was shown, added again failed the
    insert (500). The page is shown again with the reason; bob, added
    beside her, waits for the next save."""
    room = Room.objects.create(slug="team", title="Team")
    page = admin_client.get(f"/admin/realtime/room/{room.pk}/change/")
    assert 'name="memberships-INITIAL_FORMS" value="0"' in page.content.decode()
    Membership.objects.create(room=room, user=alice)  # joined meanwhile
    new_rows = {
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": str(alice.pk),
        "memberships-0-role": "member",
        "memberships-1-user": str(bob.pk),
        "memberships-1-role": "member",
    }
    response = admin_client.post(
        f"/admin/realtime/room/{room.pk}/change/",
        {"slug": "team", "title": "Team", **new_rows},
    )
    assert response.status_code == 200
    assert "alice is already a member of this room." in response.content.decode()
    assert list(room.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_a_notification_text_over_the_limit_says_so(admin_client, alice):
    """Django's action form failed on the field's max_length and answered
    "No action selected.", which says nothing of the text."""
    response = run_action(
        admin_client,
        "/admin/accounts/user/",
        "send_notification",
        [alice.pk],
        text="x" * 1001,
    )
    assert "at most 1000 are sent." in response.content.decode()
    assert not Message.objects.exists()
    run_action(
        admin_client,
        "/admin/accounts/user/",
        "send_notification",
        [alice.pk],
        text="x" * 1000,
    )
    assert Message.objects.count() == 1
