"""Group membership changes → realtime re-checks the memo streams concerned."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from realtime.kinds import rights_changed
from tests.kindsapp.stream_kinds import MEMO_GROUP_PREFIX


@receiver(m2m_changed, sender=get_user_model().groups.through)
def memo_readers_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """`user.groups.remove(group)` (and clear): that user's memo streams."""
    if reverse or action not in ("post_remove", "post_clear"):
        return
    groups = Group.objects.filter(name__startswith=MEMO_GROUP_PREFIX)
    if pk_set is not None:
        groups = groups.filter(pk__in=pk_set)
    names = [
        f"memo:{name.removeprefix(MEMO_GROUP_PREFIX)}"
        for name in groups.values_list("name", flat=True)
    ]
    rights_changed(streams=names, user_id=instance.pk)
