"""Django test clients on the API and the admin, for tests of every app."""

from django.test import Client
from rest_framework.test import APIClient


def api_client(tokens=None) -> APIClient:
    """A DRF client sending `tokens.access` as its Bearer token (none without)."""
    client = APIClient()
    if tokens is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access}")
    return client


def run_action(client: Client, url: str, action: str, ids, **fields):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **fields}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response


def ticket_for(tokens) -> tuple[int, dict]:
    response = api_client(tokens).post("/api/auth/ticket")
    return response.status_code, response.json()
