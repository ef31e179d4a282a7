from examples.shareddoc.models import Document
from examples.shareddoc.selectors import document_readable
from realtime.kinds import Access, History, Publishers, StreamKind, register


def doc_stream(document_id: int) -> str:
    return f"doc:{document_id}"


@register
class DocKind(StreamKind):
    """`doc:<id>`: a document's collaborators read and write; others see nothing."""

    name = "doc"
    key_pattern = r"[1-9][0-9]{0,17}"
    publishers = Publishers.CLIENTS
    history = History(max_per_stream=500, max_age=7 * 24 * 3600)
    presence = True

    def can_read(self, user, key: str) -> Access:
        # HIDDEN, not FORBIDDEN: a stranger cannot tell the document exists.
        if document_readable(document_id=int(key), user=user):
            return Access.ALLOWED
        return Access.HIDDEN

    def can_publish(self, user, key: str) -> bool:
        return True  # every collaborator writes

    def exists(self, key: str) -> bool:
        return Document.objects.filter(pk=int(key)).exists()
