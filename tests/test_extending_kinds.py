"""docs/extending.md's stream-kind promises for rights a Django project keeps on the user.

A project's `can_read` is the place where Django's own ways of granting
rights meet realtime: `user.has_perm(...)`, `user.is_staff`, the user's own
fields. "`rights_changed` re-checks every socket subscribed" must then see
the rights as they are after the change, not as they were when the socket
opened.
"""

import pytest
from django.contrib.auth.models import Permission

from realtime.kinds import Access, Publishers, StreamKind, registry, rights_changed
from realtime.permissions import Action, stream_access
from realtime.streams import stream_parse
from realtime.tests.conftest import TIMEOUT, db, send, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class PermKind(StreamKind):
    """`perm:<key>`: readers hold a Django permission, as a project grants it."""

    name = "perm"
    key_pattern = r"[a-z]{1,16}"
    publishers = Publishers.SERVER

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED if user.has_perm("auth.view_group") else Access.HIDDEN


class StaffKind(StreamKind):
    """`staff:<key>`: staff only, read from the user's own flag."""

    name = "staff"
    key_pattern = r"[a-z]{1,16}"
    publishers = Publishers.SERVER

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED if user.is_staff else Access.HIDDEN


@pytest.fixture(autouse=True)
def _kinds(monkeypatch):
    for kind in (PermKind(), StaffKind()):
        monkeypatch.setitem(registry.kinds, kind.name, kind)


def view_group_permission() -> Permission:
    return Permission.objects.get(codename="view_group", content_type__app_label="auth")


UNSUBSCRIBED = {"type": "unsubscribed", "reason": "forbidden"}


async def test_a_permission_taken_away_ends_the_subscription(connect, alice):
    """`user.user_permissions.remove(...)` then `rights_changed`: the Django
    way of granting a right, and the documented way of saying it changed."""
    await db(lambda: alice.user_permissions.add(view_group_permission()))
    socket = await connect(alice)
    await subscribe(socket, "perm:ops")
    await db(lambda: alice.user_permissions.remove(view_group_permission()))
    await db(rights_changed, stream="perm:ops")
    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        **UNSUBSCRIBED,
        "stream": "perm:ops",
    }


async def test_a_user_no_longer_staff_loses_a_staff_stream(connect, make_user):
    """The user's own field changed (the admin's "staff status" box), then
    `rights_changed(..., user_id=...)` for his sockets."""
    ops = await db(make_user, "ops", "pw-ops-123", is_staff=True)
    socket = await connect(ops)
    await subscribe(socket, "staff:desk")

    def demote():
        ops.is_staff = False
        ops.save(update_fields=["is_staff"])

    await db(demote)
    await db(rights_changed, stream="staff:desk", user_id=ops.pk)
    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        **UNSUBSCRIBED,
        "stream": "staff:desk",
    }


async def test_a_permission_granted_on_an_open_socket_lets_it_subscribe(connect, alice):
    """Refused once, then granted: the next `subscribe` of the same socket must
    ask the permission as it is now, not the cache of the refusal."""
    socket = await connect(alice)
    refused = await send(socket, {"type": "subscribe", "stream": "perm:ops"})
    assert refused["type"] == "error" and refused["code"] == "forbidden", refused
    await db(lambda: alice.user_permissions.add(view_group_permission()))
    await subscribe(socket, "perm:ops")


class YesKind(StreamKind):
    """`yes:<key>`: a `can_read` that answers a bool, as one might guess."""

    name = "yes"
    key_pattern = r"[a-z]{1,16}"

    def can_read(self, user, key: str):
        return True


async def test_a_check_that_answers_no_access_is_a_loud_error(alice, monkeypatch):
    """`True` is not `Access.ALLOWED`: taken as is, it refused everyone
    without a word. The kind's author hears of it at the first decision."""
    monkeypatch.setitem(registry.kinds, "yes", YesKind())
    stream = stream_parse("yes:door", user_id=alice.pk)
    with pytest.raises(TypeError, match=r"can_read\(\) must return .*Access.*not True"):
        await db(stream_access, user=alice, stream=stream, action=Action.READ)
