"""Worked examples of a project built on authsocket (docs/extending.md).

Each example is enabled by its own settings module, so the product itself
stays as it is: `make run-example` serves the shared-document example.
"""
