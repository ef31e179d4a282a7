"""Admin for users, their login sessions, and service keys.

Actions call the same services as the API: revoking goes through
accounts.revocation. Apps built on accounts add their own bulk actions on
users with `user_action_register`, so that accounts imports none of them.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import AuthSession, ServiceKey, SessionRevocation, User
from accounts.revocation import sessions_revoke, user_sessions_revoke, users_lock
from accounts.service_keys import service_keys_revoke

ADMIN_REVOKE_REASON = "admin"
# The fields that grant rights. Django lets whoever may change users set them,
# on themselves too, which its docs call as good as superuser status: here
# only a superuser may.
PRIVILEGE_FIELDS = ("is_superuser", "groups", "user_permissions")


class UserActionForm(ActionForm):
    """The user list's action bar; registered actions add their fields to it."""


class AuthSessionInline(admin.TabularInline):
    model = AuthSession
    fields = [
        "sid",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "revoke_reason",
        "user_agent",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [AuthSessionInline]
    action_form = UserActionForm
    actions = ["revoke_sessions"]
    # Registered actions' names → the permission ("app.codename") each needs.
    registered_permissions: dict[str, str] = {}

    def get_actions(self, request):
        """Django runs a list's actions for whoever may view the list, unless
        an action names a permission: a registered action names its own."""
        actions = super().get_actions(request)
        for name, permission in self.registered_permissions.items():
            if name in actions and not request.user.has_perm(permission):
                del actions[name]
        return actions

    @admin.action(
        description="Revoke all sessions of the selected users",
        permissions=["revoke_sessions"],
    )
    def revoke_sessions(self, request, queryset) -> None:
        sids = []
        for user in queryset:
            sids += user_sessions_revoke(user_id=user.pk, reason=ADMIN_REVOKE_REASON)
        self.message_user(request, f"Revoked {len(sids)} session(s).")

    def delete_model(self, request, obj: User) -> None:
        """Lock the user's row before the deletion reads what it deletes.

        The lock order of accounts.revocation: a login or a password change
        holding the row finishes first, and the deletion then finds (and
        deletes) the session it made, instead of failing on it at commit.
        """
        with transaction.atomic():
            users = User.objects.filter(pk=obj.pk)
            list(users_lock(users, deleting=True).values_list("pk", flat=True))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        """The bulk "delete selected" action: every row locked first, in pk
        order, as `delete_model` does for one."""
        users = User.objects.filter(pk__in=list(queryset.values_list("pk", flat=True)))
        with transaction.atomic():
            list(users_lock(users, deleting=True).values_list("pk", flat=True))
            super().delete_queryset(request, queryset)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, *PRIVILEGE_FIELDS)

    def has_change_permission(self, request, obj=None) -> bool:
        """A superuser's account (its password, its rights) is changed by
        superusers only: otherwise `change_user` could take it over."""
        allowed = super().has_change_permission(request, obj)
        return allowed and self._may_manage(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        """Also asked per row by the bulk delete, which then refuses the batch."""
        allowed = super().has_delete_permission(request, obj)
        return allowed and self._may_manage(request, obj)

    @staticmethod
    def _may_manage(request, obj: User | None) -> bool:
        return obj is None or not obj.is_superuser or request.user.is_superuser

    def has_revoke_sessions_permission(self, request) -> bool:
        """Revoking changes login sessions, whichever list it starts from."""
        return request.user.has_perm("accounts.change_authsession")


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Django's group admin, whose permissions only a superuser may set.

    Whoever may change a group could otherwise tick every permission on a
    group he belongs to, and hold them all: the same escalation as the
    user form's rights fields (PRIVILEGE_FIELDS).
    """

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, "permissions")


def user_action_register(action, *, permission: str, **fields: forms.Field) -> None:
    """Add a bulk action to the user list, and the action-bar fields it reads.

    `action(modeladmin, request, queryset)` is an ordinary admin action; it
    finds its fields' values in `request.POST`. Only staff holding
    `permission` ("app.codename") see and run it.
    """
    UserAdmin.actions = [*UserAdmin.actions, action]
    UserAdmin.registered_permissions[action.__name__] = permission
    UserActionForm.base_fields.update(fields)


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "live"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.live()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(AuthSession)
class AuthSessionAdmin(admin.ModelAdmin):
    list_display = [
        "short_sid",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "revoke_reason",
        "client_address",
    ]
    list_filter = [LiveFilter, "revoke_reason", "created_at"]
    # A session id is searched by the prefix the list shows: anywhere inside a
    # random id, a username's letters turn up by chance.
    search_fields = [
        "user__username",
        "sid__startswith",
        "user_agent",
        "client_address",
    ]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in AuthSession._meta.fields]
    actions = ["revoke"]

    @admin.display(description="session")
    def short_sid(self, session: AuthSession) -> str:
        return f"{session.sid[:8]}…"

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected sessions", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        sids = sessions_revoke(sessions=queryset, reason=ADMIN_REVOKE_REASON)
        self.message_user(request, f"Revoked {len(sids)} session(s).")


@admin.register(SessionRevocation)
class SessionRevocationAdmin(admin.ModelAdmin):
    """The append-only log every server process polls: look, never touch."""

    list_display = ["sid", "user_id", "revoked_at", "reason"]
    list_filter = ["reason"]
    search_fields = ["sid__startswith"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ServiceKey)
class ServiceKeyAdmin(admin.ModelAdmin):
    """Keys are created by `manage.py service_key create` (the only place a key
    is ever shown); here they are listed, by prefix, and revoked."""

    list_display = ["name", "shown_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "shown_prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def lookup_allowed(self, lookup, value, request) -> bool:
        """Django lets a list filter on any field of its own model: on the
        digest, `?digest__startswith=` would spell it out a character at a time."""
        return not lookup.startswith("digest") and super().lookup_allowed(
            lookup, value, request
        )

    @admin.display(description="key")
    def shown_prefix(self, key: ServiceKey) -> str:
        return f"{key.prefix}…"

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row says when, and keeps its name taken

    @admin.action(
        description="Revoke the selected service keys", permissions=["change"]
    )
    def revoke(self, request, queryset) -> None:
        revoked = service_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {revoked} service key(s).")
