from django.urls import path

from realtime import views

urlpatterns = [
    path("rooms", views.RoomListView.as_view(), name="rooms"),
    path(
        "rooms/<str:slug>/membership",
        views.MembershipView.as_view(),
        name="room-membership",
    ),
    path(
        "rooms/<str:slug>/messages",
        views.RoomMessagesView.as_view(),
        name="room-messages",
    ),
    path(
        "users/<int:user_id>/messages",
        views.UserMessagesView.as_view(),
        name="user-messages",
    ),
    path(
        "streams/<path:stream>/messages",
        views.StreamMessagesView.as_view(),
        name="stream-messages",
    ),
    path(
        "rooms/<str:slug>/presence",
        views.RoomPresenceView.as_view(),
        name="room-presence",
    ),
    path(
        "streams/<path:stream>/presence",
        views.StreamPresenceView.as_view(),
        name="stream-presence",
    ),
    path("users/<int:user_id>/notify", views.UserNotifyView.as_view(), name="notify"),
]
