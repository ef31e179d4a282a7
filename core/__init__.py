"""What every app of the project uses, importing none of them.

Metrics, the environment's readers, the HTTP API's error answers and strict
JSON, the admin's input checks, daphne's patch points, memory given back,
management-command helpers and the project's system checks. The apps build
on it; the project package `authsocket` wires them together above.
"""
