"""The user and group admins keep rights with superusers.

Django lets whoever may change users set `is_superuser`, groups and
permissions, their own included, and change a superuser's password; and
whoever may change groups tick every permission on a group he is in. Here a
staff member with every right on users can manage accounts, but cannot raise
anyone's rights, nor change or delete a superuser; one with every right on
groups can name them, but not give them permissions.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.models import User
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)

USER_RIGHTS = ["view_user", "add_user", "change_user", "delete_user"]


@pytest.fixture
def manager(make_user) -> User:
    """Staff with every right on users, and none beyond."""
    user = make_user("manager", "pw-manager-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=USER_RIGHTS))
    return user


@pytest.fixture
def root(make_user) -> User:
    return make_user("root", "pw-root-123", is_staff=True, is_superuser=True)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def promoting_post(client: Client, user: User) -> dict:
    """The user's change form as shown, with every right ticked: superuser,
    a group holding every permission, and every permission."""
    form = client.get(change_url(user)).context["adminform"].form
    post = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields and name != "password"
    }
    post.pop("date_joined", None)
    post.pop("last_login", None)
    everything = Group.objects.create(name=f"all-{user.pk}")
    everything.permissions.set(Permission.objects.all())
    return {
        **post,
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "is_superuser": "on",
        "groups": [everything.pk],
        "user_permissions": list(Permission.objects.values_list("pk", flat=True)),
        "auth_sessions-TOTAL_FORMS": "0",
        "auth_sessions-INITIAL_FORMS": "0",
    }


def rights(user: User) -> tuple[bool, int, int]:
    user = User.objects.get(pk=user.pk)
    return user.is_superuser, user.groups.count(), user.user_permissions.count()


@pytest.mark.parametrize("whom", ["self", "other"])
def test_a_manager_cannot_raise_rights(manager, alice, whom):
    target = manager if whom == "self" else alice
    client = logged_in(manager)
    before = rights(target)
    response = client.post(change_url(target), promoting_post(client, target))
    assert response.status_code == 302  # the rest of the form is saved
    assert rights(target) == before
    assert not User.objects.get(pk=target.pk).has_perm("auth.change_permission")


def test_a_manager_sees_the_rights_but_no_field_for_them(manager, alice):
    form = logged_in(manager).get(change_url(alice)).context["adminform"].form
    assert {"is_superuser", "groups", "user_permissions"}.isdisjoint(form.fields)


def test_a_superuser_still_grants_rights(root, alice):
    client = logged_in(root)
    response = client.post(change_url(alice), promoting_post(client, alice))
    assert response.status_code == 302
    is_superuser, groups, permissions = rights(alice)
    assert is_superuser and groups == 1 and permissions > 0


def test_a_manager_cannot_change_a_superusers_account(manager, root):
    client = logged_in(manager)
    page = client.get(change_url(root))
    assert page.status_code == 200  # shown, read-only: view_user allows that
    assert page.context["has_change_permission"] is False
    taken = client.post(
        f"/admin/accounts/user/{root.pk}/password/",
        {"password1": "taken-over-123", "password2": "taken-over-123"},
    )
    assert taken.status_code == 403
    assert User.objects.get(pk=root.pk).check_password("pw-root-123")


def test_a_manager_cannot_delete_a_superuser(manager, root, alice):
    client = logged_in(manager)
    single = client.post(f"/admin/accounts/user/{root.pk}/delete/", {"post": "yes"})
    assert single.status_code == 403
    both = {
        "action": "delete_selected",
        "_selected_action": [root.pk, alice.pk],
        "post": "yes",
    }
    assert client.post("/admin/accounts/user/", both).status_code == 403
    assert User.objects.filter(pk=root.pk).exists()
    assert User.objects.filter(pk=alice.pk).exists()  # one refusal stops the batch
    run_action(
        client, "/admin/accounts/user/", "delete_selected", [alice.pk], post="yes"
    )
    assert not User.objects.filter(pk=alice.pk).exists()


def test_a_manager_still_adds_and_edits_ordinary_accounts(manager, alice):
    client = logged_in(manager)
    added = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "dave",
            "usable_password": "true",
            "password1": "pw-dave-long-12345",
            "password2": "pw-dave-long-12345",
        },
    )
    assert added.status_code == 302
    assert User.objects.get(username="dave").check_password("pw-dave-long-12345")
    post = promoting_post(client, alice)
    post["email"] = "alice@new.example"
    assert client.post(change_url(alice), post).status_code == 302
    assert User.objects.get(pk=alice.pk).email == "alice@new.example"


GROUP_RIGHTS = ["view_group", "add_group", "change_group"]


@pytest.fixture
def group_manager(make_user) -> User:
    """Staff with every right on groups, in a group of his own."""
    user = make_user("grouper", "pw-grouper-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=GROUP_RIGHTS))
    user.groups.add(Group.objects.create(name="helpdesk"))
    return user


def every_permission() -> list[int]:
    return list(Permission.objects.values_list("pk", flat=True))


def test_a_group_manager_cannot_give_his_group_permissions(group_manager):
    client = logged_in(group_manager)
    team = group_manager.groups.get()
    renamed = {"name": "support", "permissions": every_permission()}
    response = client.post(f"/admin/auth/group/{team.pk}/change/", renamed)
    assert response.status_code == 302  # the name is saved
    team.refresh_from_db()
    assert (team.name, team.permissions.count()) == ("support", 0)
    fresh = User.objects.get(pk=group_manager.pk)
    assert not fresh.has_perm("auth.change_permission")
    added = client.post(
        "/admin/auth/group/add/", {"name": "new", "permissions": every_permission()}
    )
    assert added.status_code == 302
    assert Group.objects.get(name="new").permissions.count() == 0


def test_a_superuser_still_gives_groups_permissions(root):
    team = Group.objects.create(name="helpdesk")
    client = logged_in(root)
    post = {"name": "helpdesk", "permissions": every_permission()}
    assert client.post(f"/admin/auth/group/{team.pk}/change/", post).status_code == 302
    assert team.permissions.count() == len(every_permission())
