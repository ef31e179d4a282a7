"""The example's HTTP paths before authsocket's own (whose /api/ ends in a 404)."""

from django.urls import include, path

from examples.shareddoc.views import CollaboratorView

urlpatterns = [
    path(
        "api/documents/<int:pk>/collaborators/<str:username>",
        CollaboratorView.as_view(),
        name="document-collaborator",
    ),
    path("", include("authsocket.urls")),
]
