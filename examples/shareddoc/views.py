from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from rest_framework.response import Response

from core.api_errors import ApiView
from examples.shareddoc.models import Document


class CollaboratorView(ApiView):
    """The owner shares a document (PUT) or takes it back (DELETE); 204 either way.

    Another user's document is a 404, like a missing one.
    """

    def put(self, request, pk: int, username: str) -> Response:
        document, user = self._find(request, pk, username)
        document.collaborators.add(user)
        return Response(status=204)

    def delete(self, request, pk: int, username: str) -> Response:
        document, user = self._find(request, pk, username)
        document.collaborators.remove(user)  # the signal re-checks live sockets
        return Response(status=204)

    def _find(self, request, pk: int, username: str):
        document = get_object_or_404(Document, pk=pk, owner=request.user)
        user = get_object_or_404(get_user_model(), username=username)
        return document, user
