"""Upgrading channels or channels-redis fails here until the overrides are re-checked.

realtime/channels_overrides.py and realtime/channels_redis_overrides.py replace
or lean on upstream code; each entry below is the sha256 of one upstream
function's source at the pinned version (requirements.txt) and what to re-read
in the override when it changes. Once re-checked (and re-measured, see
docs/architecture.md "Framework overrides"), update the version pin and the
hash printed by the failure.
"""

import hashlib
import importlib
import inspect
from importlib.metadata import version

import pytest

PINNED = {"channels": "4.3.2", "channels-redis": "4.3.0"}

CONSUMER = "realtime/channels_overrides.py HoplessWebsocketConsumer"
MEMORY = "realtime/channels_overrides.py LocalChannelLayer"
REDIS = "realtime/channels_redis_overrides.py ResilientRedisChannelLayer"

UPSTREAM = {
    "channels.consumer:AsyncConsumer.dispatch": (
        "39f34e7d4fb0f6552de4ade665b943fe78137379702af6b58c79a14c49a75520",
        f"{CONSUMER}.dispatch copies it minus close_old_connections: does the "
        "new version do anything else per message?",
    ),
    "channels.consumer:AsyncConsumer.__call__": (
        "e52238720872dbc3f854519bc971aa7eb41553e63c8729081549ce42465ee419",
        f"{CONSUMER}: is dispatch still what every ASGI and channel-layer "
        "message goes through, and StopConsumer still the clean exit?",
    ),
    "channels.generic.websocket:AsyncWebsocketConsumer.websocket_disconnect": (
        "10f38aa55fd51ff5e66e84eec77773a996e279de59190aef99322e27d354f078",
        f"{CONSUMER}.websocket_disconnect copies it minus the groups loop and "
        "the hop: does the new version do anything else on disconnect?",
    ),
    "channels.layers:InMemoryChannelLayer.__init__": (
        "a868dc26b1c1947d5072afd95fce95928052a872e04505ed1afd5911a35d30ae",
        f"{MEMORY}.group_send writes self.channels and reads self.groups and "
        "self.expiry directly: same names, same shapes?",
    ),
    "channels.layers:InMemoryChannelLayer.send": (
        "a4dab1cd8aff886ec3763192f62126736e59801b4a3661f20db47e92651323e1",
        f"{MEMORY}.send replaces it over mailboxes (realtime/mailbox.py), and "
        "group_send queues the same (expiry time, message) entries: does the new "
        "version do anything else, or change the entry shape?",
    ),
    "channels.layers:InMemoryChannelLayer.receive": (
        "e615f8ae40b60e128f833fd812180fb01587cb5067705cb46fdfedae55851c03",
        f"{MEMORY}.receive replaces it over mailboxes, and _clean_expired "
        "amortizes the sweep it runs on every call: anything else per receive?",
    ),
    "channels.layers:InMemoryChannelLayer._clean_expired": (
        "604032dae1cc01d27a51d5b8faf45286c8881a14ce6f0abab7438087568ba6b6",
        f"{MEMORY}._sweep copies it over mailboxes, run at most once a second: "
        "same expiry rules, still safe to delay?",
    ),
    "channels.layers:InMemoryChannelLayer.group_send": (
        "693c3172deb6431bc7f4995484071ccc24a03eaf0f6c783fe3e0349fe2a7c6d7",
        f"{MEMORY}.group_send replaces it (one pass, one copy): does the new "
        "version behave differently (e.g. full queues)? Is it still slow?",
    ),
    "channels_redis.core:RedisChannelLayer.receive": (
        "158a09895d9a7c8ed3db4aae70514dc7ad3ed81a2af73545f8c65bf4c82b6a57",
        f"{REDIS}.receive replaces it for process-local channels: does the new "
        "version still let connection errors escape and share one lock?",
    ),
    "channels_redis.core:RedisChannelLayer.receive_single": (
        "5a498bb3a2545bf16417e95dfafba14a39177ebf8f76369ee5caeed838688a5f",
        f"{REDIS}._read calls it and expects (channel or list of channels, "
        "message): same return shape, same backup-queue cleaning?",
    ),
    "channels_redis.core:RedisChannelLayer.non_local_name": (
        "1c760aa27cf174c5877cb821a6c15640213095bcfc21bfc869d5dce9110ea355",
        f"{REDIS}.receive keys its reader on it: same Redis key per process?",
    ),
    "channels_redis.core:RedisChannelLayer.group_add": (
        "85ed67999d94bb85624d31b42566da065b9ce113f25232f5ad41cb3c5d0d6b4c",
        f"{REDIS}.group_add/_recover call it to (re-)add memberships: same "
        "Redis commands, still safe to repeat?",
    ),
    "channels_redis.core:RedisChannelLayer.group_discard": (
        "c5f15129af9f622b5126dfc3a9597bf3bef01044d55de302fffc69010e255c27",
        f"{REDIS}.group_discard wraps it and swallows outages: still only a "
        "membership removal?",
    ),
    "channels_redis.core:RedisChannelLayer.flush": (
        "e92ed900373a3d78e8889425ff9e4c6d0633982d5a940030c836315bdafa4094",
        f"{REDIS}.flush stops its readers first: does flush now touch receive "
        "state it should also reset?",
    ),
    "channels_redis.core:RedisChannelLayer.close_pools": (
        "e027f6102aa47f57ab605371e3fb57aeddbb9ed4221b52da559313fc5e2b007c",
        f"{REDIS}.close_pools stops its readers first: same pools?",
    ),
}


def fingerprint(target: str) -> str:
    module_name, qualname = target.split(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_overridden_frameworks_are_the_pinned_versions(package):
    assert version(package) == PINNED[package], (
        f"{package} {version(package)} is installed, the overrides were checked "
        f"against {PINNED[package]}: re-check the entries of this file for it."
    )


@pytest.mark.parametrize("target", sorted(UPSTREAM))
def test_upstream_code_the_overrides_rely_on_is_unchanged(target):
    expected, recheck = UPSTREAM[target]
    actual = fingerprint(target)
    assert actual == expected, (
        f"{target} changed upstream (sha256 {actual}). Re-check: {recheck}"
    )
