"""URLs of the server API, mounted at /api/server/."""

from django.urls import path

from realtime import server_views

urlpatterns = [
    path("publish", server_views.PublishView.as_view(), name="server-publish"),
    path(
        "streams/<path:stream>/messages",
        server_views.StreamMessagesView.as_view(),
        name="server-stream-messages",
    ),
    path(
        "streams/<path:stream>/presence",
        server_views.StreamPresenceView.as_view(),
        name="server-stream-presence",
    ),
    path(
        "users/<int:user_id>/connections",
        server_views.UserConnectionsView.as_view(),
        name="server-user-connections",
    ),
    path(
        "users/<int:user_id>/revoke",
        server_views.UserRevokeView.as_view(),
        name="server-user-revoke",
    ),
]
