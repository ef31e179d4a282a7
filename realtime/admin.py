"""Admin for rooms, memberships and stored messages, and notifying users.

Edits here fire the model signals of realtime.signals, so removing a member,
making a room private or deleting it ends the affected live subscriptions.
Messages are read-only: history is what was delivered. The user list's
"send a notification" action is registered on accounts' user admin from here.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from accounts.admin import user_action_register
from realtime.models import Membership, Message, Room
from realtime.protocol import ROOM_STREAM_PREFIX
from realtime.publish import publish_to_user


@admin.action(description="Send a notification to the selected users")
def send_notification(modeladmin, request, queryset) -> None:
    """Store the text on each user's private stream, then deliver it live."""
    text = request.POST.get("text", "").strip()
    if not text:
        modeladmin.message_user(
            request, "Type the notification text first.", messages.ERROR
        )
        return
    users = list(queryset)
    for user in users:
        publish_to_user(user=user, data={"text": text})
    modeladmin.message_user(request, f"Notified {len(users)} user(s).")


user_action_register(
    send_notification,
    text=forms.CharField(required=False, max_length=1000, label="Notification text"),
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "public", "member_count", "last_message_id"]
    list_filter = ["public"]
    search_fields = ["slug", "title"]
    readonly_fields = ["last_message_id", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(members=Count("memberships"))

    @admin.display(description="members", ordering="members")
    def member_count(self, room: Room) -> int:
        return room.members


class StreamFilter(admin.SimpleListFilter):
    """Filter by stream: one room, or every private user stream."""

    title = "stream"
    parameter_name = "stream"
    USERS = "user"

    def lookups(self, request, model_admin):
        rooms = [
            (f"{ROOM_STREAM_PREFIX}{slug}",) * 2
            for slug in Room.objects.values_list("slug", flat=True)
        ]
        return [*rooms, (self.USERS, "user streams")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.USERS:
            return queryset.filter(recipient__isnull=False)
        if value and value.startswith(ROOM_STREAM_PREFIX):
            return queryset.filter(room__slug=value.removeprefix(ROOM_STREAM_PREFIX))
        return queryset


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["stream", "seq", "sender", "created_at", "data"]
    list_filter = [StreamFilter, "created_at"]
    search_fields = ["recipient__username", "sender__username", "room__slug"]
    list_select_related = ["room", "recipient", "sender"]

    @admin.display(description="stream")
    def stream(self, message: Message) -> str:
        if message.room_id:
            return message.stream_name
        return f"{message.stream_name} ({message.recipient})"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "role", "created_at"]
    list_filter = ["role", "room"]
    search_fields = ["user__username", "room__slug"]
    autocomplete_fields = ["user", "room"]
