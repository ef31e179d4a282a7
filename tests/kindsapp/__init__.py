"""A project's own app, installed only by tests/settings_kinds.py.

It adds stream kinds through realtime's public API alone, as a project
would: `memo:<key>` (read and written by the members of the Django group
`memo-<key>`, three messages kept) and `board:<key>` (fed by the project's
code only: the server API may not publish to it).
"""
