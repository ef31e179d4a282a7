"""What a `subscribe` replays, and how a live gap is filled (docs/protocol.md).

Both read at most `limit` messages: a `since` of 0 on a big room never loads
its history at once; the client pages through it with `next_since`. Ids are
numbered in commit order, so once the counter says `last_id`, every message up
to it is committed: the counter read first and the page clipped at `last_id`
are one consistent view, as a single read would be.
"""

from dataclasses import dataclass

from realtime.messages import message_frame
from realtime.permissions import Action, stream_access
from realtime.selectors import messages_between, stream_last_id
from realtime.streams import Stream


@dataclass(frozen=True, slots=True)
class Replay:
    last_id: int  # the stream's latest id when read (0 if none)
    frames: list[dict]  # oldest first, each with "replay": true
    position: int  # the client has everything up to here once frames are sent
    truncated: bool  # more after `position`: nothing live until resubscribed
    reset: bool  # `since` could not be honoured (past the end, or pruned)


def replay_read(
    *,
    user,
    stream: Stream,
    since: int | None,
    sent: int = 0,
    unsent_below: int = 0,
    limit: int,
) -> Replay | None:
    """None when `user` may not read `stream`; else the answer to `subscribe`.

    `sent` is the highest id this socket was already sent on the stream (a
    subscription it holds): never sent again, whatever `since` says. What
    it was never sent is replayed as `since` asks, as on a first subscribe.
    `unsent_below`: ids under it were never sent and cannot be any more (the
    user stream's live messages before its `subscribe`); a `since` under it
    cannot be honoured, so the answer is a `reset`, never a silent gap.
    """
    decision = stream_access(user=user, stream=stream, action=Action.READ)
    if not decision.allowed:
        return None
    last_id = stream_last_id(stream=stream)  # read after the group join
    if not stream.keeps_history:  # nothing stored, nothing to replay (no `since`)
        return Replay(last_id, [], last_id, truncated=False, reset=False)
    start = last_id if since is None else max(since, sent)
    skipped = since is not None and since + 1 < unsent_below
    if start >= last_id:
        # Past the end (a restored database, a client's bad memory): what comes
        # after `last_id` is delivered, nothing is swallowed.
        reset = start > last_id or skipped
        return Replay(last_id, [], last_id, truncated=False, reset=reset)
    messages = messages_between(
        stream=stream, after=start, through=last_id, limit=limit
    )
    frames = [message_frame(message, replay=True) for message in messages]
    truncated = len(frames) == limit and frames[-1]["id"] < last_id
    return Replay(
        last_id,
        frames,
        frames[-1]["id"] if truncated else last_id,
        truncated=truncated,
        # `start + 1` is gone while later ones are kept: history was pruned.
        reset=skipped or not frames or frames[0]["id"] != start + 1,
    )


def gap_read(*, stream: Stream, after: int, before: int, limit: int) -> list[dict]:
    """Up to `limit` stored messages numbered strictly between the two ids."""
    messages = messages_between(
        stream=stream, after=after, through=before - 1, limit=limit
    )
    return [message_frame(message) for message in messages]
