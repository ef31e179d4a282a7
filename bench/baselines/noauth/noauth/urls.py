"""The one HTTP endpoint the fan-out scenario calls: joining a room, always 204."""

from django.http import HttpResponse
from django.urls import path


def membership(request, slug):
    return HttpResponse(status=204)


urlpatterns = [path("api/rooms/<slug:slug>/membership", membership)]
