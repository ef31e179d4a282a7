"""The places where authsocket replaces Channels internals, each for a measured cost.

- `HoplessWebsocketConsumer.dispatch` and `.websocket_disconnect`: Channels runs
  `close_old_connections` on the shared sync thread before every message and
  after every disconnect; our consumers reach the ORM only through
  `database_sync_to_async` or the session guard's threads, which clean up
  connections themselves, so the hop is skipped. `.__call__`: a consumer that
  is cancelled still runs `disconnect()` (Channels' does not), or waits for
  the release under way (`release_shielded`: a cancel never cuts it), and the
  layer forgets a consumer's channel when it ends (`channel_forget`).
- `LocalChannelLayer._clean_expired` and `.group_send`: the in-memory layer
  sweeps every channel on every `receive()` and starts a task per group member;
  its `.send` and `.receive`: one `asyncio.Queue` per waiting channel (every
  idle socket has one) is ~3 KiB, a `Mailbox` a few dozen bytes.

Why each one pays for itself, with figures: docs/architecture.md ("Framework
overrides"). channels is pinned exactly in requirements.txt, and
realtime/tests/test_upstream_fingerprints.py fails when an upgrade changes the
upstream code these rely on, naming what to re-check.
"""

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from copy import deepcopy

from channels.consumer import get_handler_name
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer

from realtime.mailbox import Mailbox
from realtime.protocol import CloseCode

SWEEP_INTERVAL = 1.0  # seconds between sweeps of expired messages and groups
# The code `disconnect()` gets when the application was cancelled before it
# read its `websocket.disconnect`: the connection is gone, its code unread.
ABNORMAL_CLOSURE = 1006
# Releases under way (`release_shielded`, cancelled consumers): the loop
# holds tasks only weakly, and one may outlive the consumer's own task.
_releases: set[asyncio.Future] = set()
# Seconds a cancelled consumer waits for its release: within the 5 s the
# shutdown allows the registry's goodbye (docs/deploy.md §5.1), which runs
# beside daphne's wait for its cancelled applications.
RELEASE_WAIT = 5.0


class HoplessWebsocketConsumer(AsyncWebsocketConsumer):
    """Channels' WebSocket consumer without its per-message thread hop.

    Subclasses join groups themselves (`groups` stays empty), never touch the
    ORM on the event loop, and keep `disconnect()` idempotent: it also runs
    when a handler raises, and when the consumer is cancelled.
    """

    # No per-socket list: Channels' __init__ makes one when this is None.
    groups = ()
    # The release started by `release_shielded`, once there is one.
    releasing: asyncio.Future | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer; cancelled, it still releases its socket's state.

        daphne cancels an application still running `--application-close-timeout`
        seconds (10) after its client left: one whose handler waits on a slow
        database or service (a frame in flight when the client went), or on
        the queue of the one thread every socket's ORM work shares. Channels
        would end the consumer without `disconnect()`, and its socket would
        stay counted for the life of the process: in the per-user connection
        limit, in presence, in its groups. The release runs in a task of its
        own: daphne cancels again every second, and waits at shutdown. A
        cancel that lands while the release already runs (it waits on a
        stalled Redis) waits for that one: `release_shielded` kept it whole.
        """
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            release = self.releasing
            if release is None:  # cancelled before its disconnect() began
                release = _release_start(self.disconnect(ABNORMAL_CLOSURE))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({release}, timeout=RELEASE_WAIT)
            raise
        finally:
            self._channel_forget()

    async def release_shielded(self, release: Coroutine) -> None:
        """Await `release` (what `disconnect()` awaits), run in a task that no
        cancel of this consumer cuts.

        Cut midway, a release would leave behind what it had not reached
        yet (e.g. the presence of the streams not left yet, the registry's
        entry), for the life of the process: `disconnect()` runs once, so
        nothing releases it again. A task costs a few µs per close; only
        consumers with something to await pay it.
        """
        done = asyncio.get_running_loop().create_future()
        self.releasing = _release_start(_release_run(release, done))
        await done

    def _channel_forget(self) -> None:
        """The layer drops what it still holds for this consumer's channel.

        A consumer stops reading its channel with messages maybe still
        queued there (its disconnect is handled before the messages that
        arrived with it), and nothing else ever reads a consumer's channel.
        """
        forget = getattr(getattr(self, "channel_layer", None), "channel_forget", None)
        channel = getattr(self, "channel_name", None)
        if forget is not None and channel is not None:
            forget(channel)

    async def dispatch(self, message: dict) -> None:
        """Route an ASGI or channel-layer message to its handler, with no hop.

        A handler's exception still releases the socket's state: Channels
        would end the consumer without `disconnect()`, and e.g. the per-user
        connection count would keep a dead socket for the life of the
        process. Re-raised: daphne logs it and closes 1011.
        """
        handler = getattr(self, get_handler_name(message), None)
        try:
            if handler is None:  # an event nobody handles releases it too
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)
        except StopConsumer:
            raise
        except Exception as exc:
            await self.disconnect(CloseCode.INTERNAL_ERROR)
            await self._handler_failed(message, exc)
            raise

    async def _handler_failed(self, message: dict, exc: Exception) -> None:
        """After a handler raised `exc` and the socket was released: raise
        StopConsumer to end quietly instead of handing `exc` to daphne.

        Off the hot path: only a failed message pays for it.
        """

    async def websocket_disconnect(self, message: dict) -> None:
        """Channels' version minus its group loop (no `groups`) and its hop."""
        await self.disconnect(message["code"])
        raise StopConsumer()


def _release_start(release: Coroutine) -> asyncio.Future:
    """`release` in a task of its own, held until it ends."""
    task = asyncio.ensure_future(release)
    _releases.add(task)
    task.add_done_callback(_releases.discard)
    return task


async def _release_run(release: Coroutine, done: asyncio.Future) -> None:
    """Run `release`; its outcome goes to `done`, whose awaiter may be gone.

    `asyncio.shield` would do, at one more turn of the loop per close.
    """
    try:
        result = await release
    except asyncio.CancelledError:
        done.cancel()
        raise
    except Exception as exc:
        if done.done():  # nobody waits: the loop's handler reports it
            raise
        done.set_exception(exc)
    else:
        if not done.done():
            done.set_result(result)


class LocalChannelLayer(InMemoryChannelLayer):
    """In-memory layer whose expiry sweep is amortized, not run per receive.

    An expired message may be handed out up to SWEEP_INTERVAL late. Each
    channel's messages wait in a `Mailbox` (realtime/mailbox.py), not in an
    `asyncio.Queue`: every idle socket's receive holds one.
    """

    _last_sweep = 0.0

    async def send(self, channel: str, message: dict) -> None:
        """Channels' `send`, into the channel's mailbox."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        entry = (time.time() + self.expiry, deepcopy(message))
        try:
            self._mailbox(channel).put_nowait(entry)
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict:
        """Channels' `receive`: the next message; an emptied mailbox is dropped."""
        self.require_valid_channel_name(channel)
        self._clean_expired()
        mailbox = self._mailbox(channel)
        try:
            _, message = await mailbox.get()
        finally:
            idle = mailbox.empty() and not mailbox.waiting
            if idle and self.channels.get(channel) is mailbox:
                del self.channels[channel]
        return message

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL:
            return
        self._last_sweep = now
        self._sweep()

    def _sweep(self) -> None:
        """Channels' sweep over mailboxes: a channel with an expired message
        leaves every group.

        Unlike Channels', memberships do not end `group_expiry` (a day) after
        they began: that age limit is for channels of a process that died,
        and in one process every member leaves its groups when it closes. A
        socket may live as long as its session (two weeks by default), and
        would otherwise stop hearing its rooms and its user stream after a day.
        """
        for channel, mailbox in list(self.channels.items()):
            while not mailbox.empty() and mailbox.peek()[0] < time.time():
                mailbox.get_nowait()
                self._remove_from_groups(channel)
                if mailbox.empty() and not mailbox.waiting:
                    self.channels.pop(channel, None)

    async def group_send(self, group: str, message: dict) -> None:
        """One pass over the members, one copy of the message for them all.

        The copy keeps the sender's dict apart; the members share it, so
        channel-layer events are read-only for consumers (ours are).
        A full member mailbox drops its copy, as the stock version does.
        """
        if not isinstance(message, dict):
            raise TypeError("A channel-layer message is a dict.")
        self.require_valid_group_name(group)
        self._clean_expired()
        members = self.groups.get(group)
        if not members:
            return
        entry = (time.time() + self.expiry, deepcopy(message))
        for channel in list(members):
            with contextlib.suppress(asyncio.QueueFull):
                self._mailbox(channel).put_nowait(entry)

    def channel_forget(self, channel: str) -> None:
        """Its consumer has ended: what is queued for it goes now, not at its expiry."""
        self.channels.pop(channel, None)

    def _mailbox(self, channel: str) -> Mailbox:
        mailbox = self.channels.get(channel)
        if mailbox is None:
            mailbox = self.channels[channel] = Mailbox(self.get_capacity(channel))
        return mailbox
