"""docs/extending.md's live-cursor consumer, as a project would write it."""
