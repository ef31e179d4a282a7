from django.urls import include, path

from tests.kindsapp import views

urlpatterns = [
    path("kinds-test/memo/<str:key>/readers/<str:username>", views.memo_reader),
    path("kinds-test/board/<str:key>", views.board_post),
    path("", include("authsocket.urls")),
]
