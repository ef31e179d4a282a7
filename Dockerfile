# authsocket: one daphne process per container (docs/deploy.md, docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system authsocket \
    && useradd --system --gid authsocket --no-create-home --home-dir /app authsocket

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings that load outside debug; these throwaway values
# exist only for this build step and never reach the running container.
RUN DJANGO_DEBUG=0 \
    DJANGO_SECRET_KEY=collectstatic-build-step-only \
    AUTHSOCKET_JWT_SECRET=collectstatic-build-step-only-0123456789 \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && python -m compileall -q accounts authsocket core realtime

USER authsocket
EXPOSE 8000
# authsocket.serve drains on SIGTERM (close 4503, then exit): give it time
# with `docker stop -t` / compose's stop_grace_period above AUTHSOCKET_SHUTDOWN_GRACE.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["python", "-m", "authsocket.serve", "--bind", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "-v", "1", "--access-log", "-", "authsocket.asgi:application"]
