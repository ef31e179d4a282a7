"""The interactive API reference at /api/docs/ works with no internet access.

Every asset it loads comes from this server, and none of it is an inline
script, so a Content-Security-Policy of `script-src 'self'` does not blank it.
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def page_assets(html: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in ASSET.findall(html)]


def test_docs_page_loads_only_same_origin_assets(client):
    answer = client.get("/api/docs/")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/html")
    html = answer.content.decode()
    assert not re.search(r"(?:https?:)?//", " ".join(page_assets(html)))
    assert "googleapis" not in html and "cdn" not in html.lower()


def test_docs_page_has_no_inline_script_or_style(client):
    html = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html


def test_every_asset_of_the_docs_page_is_served(client):
    html = client.get("/api/docs/").content.decode()
    assets = page_assets(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets)
    assert any("script" in url for url in assets)  # the init script, by URL
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        body = (
            b"".join(answer.streaming_content) if answer.streaming else answer.content
        )
        assert body, url


def test_init_script_points_swagger_ui_at_the_schema(client):
    answer = client.get("/api/docs/?script=")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in answer.content.decode()


def test_docs_without_slash_redirects(client):
    answer = client.get("/api/docs")
    assert answer.status_code == 301
    assert answer["Location"] == "/api/docs/"


def test_schema_is_served(client):
    answer = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    assert "/api/auth/login" in answer.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "version=%0A",
        "version=%0D%0ASet-Cookie:x=1",
        "version=%00",
        "lang=xx-" + "y" * 200,
    ],
)
def test_the_schema_ignores_a_version_or_language_asked_for(client, query):
    """drf-spectacular put `?version=` in a header (a line break: 500) and
    the schema, and cached a translation per `?lang=` value for good."""
    answer = client.get(f"/api/schema/?{query}", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    assert answer.json()["info"]["version"] == "1"
    assert answer["Content-Disposition"] == 'inline; filename="authsocket API.json"'


def test_the_demo_page_and_the_readme_link_to_the_reference(client):
    demo = client.get("/").content.decode()
    assert 'href="/api/docs/"' in demo
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "http://127.0.0.1:8000/api/docs/" in readme


def test_options_on_the_docs_page_is_a_json_405(client):
    # DRF answered OPTIONS through the page's template renderer: a 500.
    answer = client.options("/api/docs/")
    assert answer.status_code == 405
    assert answer["Content-Type"] == "application/json"
    assert answer.json()["code"] == "method_not_allowed"
    assert client.head("/api/docs/").status_code == 200
