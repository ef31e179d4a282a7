"""Bench-only Django app: two stream kinds alike but for presence.

Loaded only by the presence scenarios (DJANGO_SETTINGS_MODULE
`bench.presence_app.settings`), so "presence on vs off" compares one kind
with itself, its `presence` flag aside.
"""
