from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/login", views.LoginView.as_view(), name="login"),
    path("auth/refresh", views.RefreshView.as_view(), name="refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("auth/logout-others", views.LogoutOthersView.as_view(), name="logout-others"),
    path("auth/logout-all", views.LogoutAllView.as_view(), name="logout-all"),
    path("auth/sessions", views.SessionListView.as_view(), name="sessions"),
    path("auth/sessions/<str:sid>", views.SessionDetailView.as_view(), name="session"),
    path("auth/password", views.PasswordChangeView.as_view(), name="password"),
    path("auth/ticket", views.TicketView.as_view(), name="ticket"),
    path("me", views.MeView.as_view(), name="me"),
]
