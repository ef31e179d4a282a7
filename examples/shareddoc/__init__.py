"""A shared document: a `doc:<id>` stream for its collaborators, live cursors."""
