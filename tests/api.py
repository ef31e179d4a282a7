"""Django test clients on the API and the admin, for tests of every app."""

from django.test import Client
from rest_framework.test import APIClient


def run_action(client: Client, url: str, action: str, ids, **fields):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **fields}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response


def ticket_for(tokens) -> tuple[int, dict]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access}")
    response = client.post("/api/auth/ticket")
    return response.status_code, response.json()
