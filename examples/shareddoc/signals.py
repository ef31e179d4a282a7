from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

from examples.shareddoc.models import Document
from examples.shareddoc.stream_kinds import doc_stream
from realtime.kinds import rights_changed


@receiver(m2m_changed, sender=Document.collaborators.through)
def collaborators_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Someone may have lost a document: live sockets re-check it after commit.

    `pre_clear`, not `post_clear`: only then are the documents still known;
    Django clears inside a transaction, so the re-check still runs after it.
    """
    if action not in ("post_remove", "pre_clear"):
        return
    if not reverse:  # document.collaborators.remove(user) or .clear()
        rights_changed(stream=doc_stream(instance.pk))
        return
    # user.shared_documents.remove(document) or .clear()
    if pk_set is None:
        pk_set = instance.shared_documents.values_list("pk", flat=True)
    rights_changed(streams=[doc_stream(pk) for pk in pk_set], user_id=instance.pk)


@receiver(post_delete, sender=Document)
def document_deleted(sender, instance, **kwargs):
    rights_changed(stream=doc_stream(instance.pk))
