"""Test-only endpoints: change who reads a memo, publish on a board."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from realtime.kinds import publish
from tests.kindsapp.stream_kinds import memo_group


@csrf_exempt
def memo_reader(request, key: str, username: str) -> HttpResponse:
    """PUT adds `username` to the memo's readers, DELETE removes him."""
    user = get_object_or_404(get_user_model(), username=username)
    group, _ = Group.objects.get_or_create(name=memo_group(key))
    if request.method == "PUT":
        user.groups.add(group)
    elif request.method == "DELETE":
        user.groups.remove(group)
    else:
        return HttpResponse(status=405)
    return HttpResponse(status=204)


@csrf_exempt
def board_post(request, key: str) -> HttpResponse:
    """The project's own code publishing where the server API may not."""
    message = publish(stream=f"board:{key}", data=request.body.decode())
    return JsonResponse({"id": message.seq}, status=201)
