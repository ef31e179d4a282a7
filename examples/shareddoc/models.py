from django.conf import settings
from django.db import models


class Document(models.Model):
    """A document its collaborators read and write together, live."""

    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="owned_documents",
    )
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="shared_documents", blank=True
    )

    def __str__(self) -> str:
        return self.title
