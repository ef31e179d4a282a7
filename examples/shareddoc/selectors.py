from examples.shareddoc.models import Document


def document_readable(*, document_id: int, user) -> bool:
    """The one rule of the example: collaborators, and only they, see a document."""
    return Document.objects.filter(pk=document_id, collaborators=user).exists()
