"""Admin for rooms, memberships and stored messages, and notifying users.

Edits here fire the model signals of realtime.signals, so removing a member,
making a room private or deleting it ends the affected live subscriptions.
Messages are read-only: history is what was delivered. The user list's
"send a notification" action is registered on accounts' user admin from here.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Concat

from accounts.admin import user_action_register
from core.admin_input import AutocompleteKeysOnly
from realtime.kind_registry import registry
from realtime.models import Membership, Message, Room, StreamCounter
from realtime.protocol import ROOM_STREAM_PREFIX
from realtime.publish import publish_to_user

NOTIFICATION_MAX_LENGTH = 1000


@admin.action(description="Send a notification to the selected users")
def send_notification(modeladmin, request, queryset) -> None:
    """Store the text on each user's private stream, then deliver it live."""
    text = request.POST.get("text", "").strip()
    if not text:
        modeladmin.message_user(
            request, "Type the notification text first.", messages.ERROR
        )
        return
    if len(text) > NOTIFICATION_MAX_LENGTH:
        modeladmin.message_user(
            request,
            f"The notification text is {len(text)} characters long; "
            f"at most {NOTIFICATION_MAX_LENGTH} are sent.",
            messages.ERROR,
        )
        return
    users = list(queryset)
    for user in users:
        publish_to_user(user=user, data={"text": text})
    modeladmin.message_user(request, f"Notified {len(users)} user(s).")


# Notifying stores a message on each user's stream: whoever may merely view
# users must not write there.
user_action_register(
    send_notification,
    permission="realtime.add_message",
    # No max_length: Django's action form would fail on it and answer "No
    # action selected."; the action says why instead. The browser still
    # stops at the limit.
    text=forms.CharField(
        required=False,
        label="Notification text",
        widget=forms.TextInput(attrs={"maxlength": NOTIFICATION_MAX_LENGTH}),
    ),
)


class MembershipFormSet(forms.BaseInlineFormSet):
    """A room's members, each new one checked against the database.

    Django checks the (user, room) constraint only among the forms of the
    page, not against rows stored since it was shown: a user who joined
    meanwhile, added again here, failed the insert with a 500.
    """

    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None:  # a room being added has no members yet
            return
        for form in self.forms:
            user = form.cleaned_data.get("user") if form.has_changed() else None
            if user is None or form.cleaned_data.get("DELETE"):
                continue
            others = Membership.objects.filter(room=self.instance, user=user)
            if others.exclude(pk=form.instance.pk).exists():
                form.add_error("user", f"{user} is already a member of this room.")


class MembershipInline(AutocompleteKeysOnly, admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "public", "member_count", "last_message_id"]
    list_filter = ["public"]
    search_fields = ["slug", "title"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        counter = StreamCounter.objects.filter(
            stream=Concat(Value(ROOM_STREAM_PREFIX), OuterRef("slug"))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                members=Count("memberships"),
                last_id=Subquery(counter.values("last_message_id")[:1]),
            )
        )

    @admin.display(description="members", ordering="members")
    def member_count(self, room: Room) -> int:
        return room.members

    @admin.display(description="last message id", ordering="last_id")
    def last_message_id(self, room: Room) -> int:
        return room.last_id or 0


class StreamFilter(admin.SimpleListFilter):
    """`?stream=room:team`: one stream; `?stream=room`: every stream of a kind."""

    title = "stream"
    parameter_name = "stream"

    def lookups(self, request, model_admin):
        return [(kind.name, f"{kind.name} streams") for kind in registry]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if ":" in value:
            return queryset.filter(stream=value)
        return queryset.filter(stream__startswith=f"{value}:")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Search by stream name (`room:lobby`, `user:7`, or a prefix of one)."""

    list_display = ["stream", "seq", "sender", "created_at", "data"]
    list_filter = [StreamFilter, "created_at"]
    search_fields = ["^stream", "sender__username"]
    list_select_related = ["sender"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(AutocompleteKeysOnly, admin.ModelAdmin):
    list_display = ["user", "room", "role", "created_at"]
    list_filter = ["role", "room"]
    search_fields = ["user__username", "room__slug"]
    autocomplete_fields = ["user", "room"]
