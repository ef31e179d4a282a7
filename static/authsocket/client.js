// authsocket browser client: one authenticated, multiplexed WebSocket.
//
// Copy this file into your front end; it has no dependencies. It follows the
// wire reference in docs/protocol.md (the § numbers below are its sections):
//   - the refresh token lives only in the HttpOnly cookie (§2 cookie mode);
//     the access token lives only in memory, never in localStorage;
//   - the access token is refreshed before it expires, one refresh at a time
//     across tabs (Web Locks), and shared with the other tabs (BroadcastChannel);
//     a refresh that times out is given up on but not aborted, so its late
//     answer still stores the rotated cookie (see `_fetch`);
//   - the live socket is renewed with an `auth` frame, not reconnected;
//   - the socket is opened with a one-time ticket or the subprotocol transport,
//     never `?token=` (URLs end up in logs);
//   - after a drop it reconnects with capped exponential backoff and jitter and
//     re-subscribes each stream with `since` = the last id it has (§4.2): the
//     server's `last_id` when nothing arrived yet, and `next_since` after
//     `replay.truncated`; a `reset` means the server cannot honour that id, so
//     whatever it sends next is taken. The `user` stream is always followed
//     this way, asked for or not; it is live from `welcome`, so a `reset`
//     there can also mean a notification came before the resubscribe was
//     read: the ids it skipped are then read over HTTP and emitted first,
//     the stream's frames held meanwhile (`_fillUser`);
//   - subscribes are paced: at most
//     SUBSCRIBES_IN_FLIGHT unanswered on a socket, the rest queued in order,
//     and after a `rate_limited` refusal (the socket's frame budget, §4.2)
//     the queue waits a backoff before it goes on, so a burst of them never
//     earns the 4429 close. An `auth` frame refused `rate_limited` is sent
//     again after a backoff too;
//   - close codes and refused handshakes are handled as §4.3 says;
//   - presence (§4.4), when asked for, is kept per stream: a snapshot replaces
//     the view, joins and leaves are applied idempotently, and a leave of a
//     user a truncated snapshot did not list still lowers the count, once.
//
// Besides `state`, `message`, `error`, `user` and `subscription`, it emits
// `socket` (each socket's life: opened, renewed in band, closed and what the
// client does about it) and `presence` (the view of a stream changed).
//
//   const client = new AuthSocket();
//   client.addEventListener("state", (e) => console.log(e.detail.state));
//   client.addEventListener("message", (e) => console.log(e.detail));
//   if (!(await client.resume())) await client.login("alice", "authsocket-demo");
//   client.subscribe("room:lobby", { since: 0 });
//   await client.publish("room:lobby", { text: "hi" });

export const STATE = Object.freeze({
  CONNECTING: "connecting",
  LIVE: "live",
  RENEWING: "renewing",
  RECONNECTING: "reconnecting",
  // Signed in, but the server kept refusing the handshake although the
  // credentials are fine (§4.3: give up after a bounded number of tries).
  OFFLINE: "offline",
  SIGNED_OUT: "signed-out",
});

// docs/protocol.md §4.3. daphne drops close reasons: the code is all a client gets.
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  INTERNAL_ERROR: 1011,
  TOKEN_EXPIRED: 4401,
  REVOKED: 4403,
  TOO_MANY_CONNECTIONS: 4409,
  MESSAGE_TOO_LARGE: 4413,
  BINARY_FRAME: 4415,
  RATE_LIMITED: 4429,
  SHUTTING_DOWN: 4503,
});

// What the client does about a close (§4.3), as the `socket` event reports it.
export const CLOSE_ACTION = Object.freeze({
  REFRESH_AND_RECONNECT: "refresh, then reconnect",
  SIGN_IN_AGAIN: "stop; sign in again",
  BACKOFF: "reconnect with backoff",
  LONG_BACKOFF: "retry after a long backoff",
  RECONNECT: "reconnect",
  ASK_WHY: "ask the server why (GET /api/me)",
});

// What a close code means (§4.3); daphne sends no reason, so the page says it.
export const CLOSE_MEANING = Object.freeze({
  1000: "the server closed an idle connection",
  1006: "the connection dropped",
  1011: "internal server error",
  4401: "the access token expired",
  4403: "the session was revoked",
  4409: "too many sockets for this user",
  4413: "a message was too large",
  4415: "a binary frame was sent",
  4429: "too many frames after rate_limited",
  4503: "the server is restarting",
});

const COOKIE_HEADER = { "X-AuthSocket-Cookie": "1" };
const SUBPROTOCOL = "authsocket.v1";
const TOKEN_SUBPROTOCOL_PREFIX = "authsocket.token.";
const REFRESH_LOCK = "authsocket-refresh";
const USER_STREAM = "user";
// A socket that closes sooner than this after `welcome` earns no immediate
// retry: a server that keeps closing at once must not make the client spin.
const MIN_LIFE_MS = 1000;
// Subscribe frames one socket may have unanswered at once; the rest wait in a
// queue. The server refuses frames past a burst of 2N (AUTHSOCKET_FRAME_RATE
// N/s, 50/s by default) and closes the socket with 4429 once more than N
// refusals are outstanding (docs/protocol.md §4.2). Sent all at
// once, the resubscribes of a few hundred streams after a reconnect would
// earn that close every time. With 8 in flight, a whole window refused is 8
// refusals in a row, under N for any rate of 8/s or more; and 8 per round
// trip still keeps up with the default rate on a 100 ms round trip.
const SUBSCRIBES_IN_FLIGHT = 8;
// Reading the `user` ids a `reset` skipped (`_fillUser`): a page is the most
// the history API answers at once; a page is tried this many times, with
// backoff, before the ids left are given up (an `error` event says so).
// Bounded: the `user` frames that came live wait for it.
const FILL_PAGE = 200;
const FILL_TRIES = 3;
// The frames of `user` that wait while its earlier ids are read (`_hold`).
const HELD_KINDS = new Set(["message", "replay.truncated", "subscribed"]);

const DEFAULTS = Object.freeze({
  baseUrl: "",
  wsUrl: null,
  transport: "ticket", // or "subprotocol"
  useLocks: true,
  channelName: "authsocket",
  backoffBaseMs: 500,
  backoffCapMs: 15000,
  longBackoffMs: 30000, // 4409 and 4429: "retry later"
  maxRefusals: 6, // handshakes refused while the credentials are fine
  heartbeatMs: 25000,
  requestTimeoutMs: 10000,
  sharedTokenWaitMs: 3000,
});

/** An HTTP or protocol failure, with the wire `code` (§2, §4.2). */
export class AuthSocketError extends Error {
  constructor(code, detail = "", { status = 0, transient = false, retryAfterMs = 0 } = {}) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "AuthSocketError";
    this.code = code;
    this.detail = detail;
    this.status = status;
    this.transient = transient;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The client was closed, or signed in or out again, while the call waited. */
class Cancelled extends AuthSocketError {
  constructor() {
    super("cancelled", "superseded by close(), a sign-out or another sign-in");
    this.name = "Cancelled";
  }
}

/**
 * Who is on one stream, as the server's presence frames say (§4.4). A snapshot
 * replaces the view; a join or leave that changes nothing is ignored.
 *
 * A truncated snapshot lists at most 1,000 users while `count` counts them
 * all: a leave of a user it did not list lowers `count` all the same, once.
 */
/** A presence frame's user: an object with an id (a server may send anything). */
const isUser = (user) => user !== null && typeof user === "object" && user.id !== undefined;

export class PresenceView {
  constructor() {
    this.users = new Map(); // user id -> { id, username, connections }
    this.count = 0;
    this.truncated = false;
    // Ids of users who left since a truncated snapshot and have not joined
    // again: a repeated leave of one of them changes nothing.
    this._left = new Set();
  }

  snapshot({ users = [], count, truncated = false }) {
    this.users = new Map(
      users
        .filter(isUser)
        .map((user) => [user.id, { id: user.id, username: user.username, connections: user.connections ?? 1 }]),
    );
    this.count = Number.isInteger(count) ? count : this.users.size;
    this.truncated = truncated === true;
    this._left = new Set();
  }

  /** True when the user was not there yet. */
  join(user) {
    if (!isUser(user) || this.users.has(user.id)) return false;
    this.users.set(user.id, { id: user.id, username: user.username, connections: 1 });
    this._left.delete(user.id);
    this.count++;
    return true;
  }

  /**
   * True when the view changed: the user was listed, or (in a truncated view)
   * may have been one of the unlisted users `count` includes and had not left yet.
   */
  leave(user) {
    if (!isUser(user)) return false;
    const listed = this.users.delete(user.id);
    // A full view lists everyone: an unlisted user was not there.
    if (!listed && (!this.truncated || this._left.has(user.id))) return false;
    if (this.truncated) this._left.add(user.id);
    this.count = Math.max(this.users.size, this.count - 1);
    return true;
  }

  toJSON() {
    return { users: [...this.users.values()], count: this.count, truncated: this.truncated };
  }
}

// Credentials are dead when the server says so; everything else may pass.
const DEAD_CREDENTIALS = new Set([
  "invalid_token",
  "revoked",
  "not_authenticated",
  "token_reused",
  "session_expired",
  "invalid_credentials",
]);

/**
 * The streams followed, with their positions. `user` is always there: the
 * server subscribes it by itself (§4.2), and a reconnect must resume it too.
 */
function newStreams() {
  return new Map([[USER_STREAM, { lastId: null, presence: false, history: true, ...unheld() }]]);
}

/**
 * Per connection, `user` only: `held` (frames waiting, in order, or null)
 * from `welcome` until the resubscribe with `since` is `answered`, and while
 * the ids its `reset` skipped are read; `firstHere`: the first id the
 * connection sent of it.
 */
function unheld() {
  return { held: null, answered: false, firstHere: null };
}

function defaultWsUrl(baseUrl) {
  const url = new URL("/ws/", baseUrl || window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

// The longest Retry-After the client waits. The server's throttles count per
// minute; a longer (or infinite) value from a proxy must not park a socket
// for a day, nor overflow setTimeout (past about 24.8 days it fires at once).
const MAX_RETRY_AFTER_MS = 60_000;

/** Retry-After in ms (seconds or an HTTP-date), at most MAX_RETRY_AFTER_MS; 0 when absent or unreadable. */
function retryAfterMs(response) {
  const value = response.headers.get("Retry-After") ?? "";
  const seconds = value.trim() === "" ? NaN : Number(value);
  const ms = Number.isNaN(seconds) ? Date.parse(value) - Date.now() : seconds * 1000;
  return ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : 0;
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): the status still says enough.
  }
  // A JSON body that is no object (`null`, a number) says nothing either.
  const code = typeof body?.code === "string" ? body.code : `http_${response.status}`;
  return new AuthSocketError(code, typeof body?.detail === "string" ? body.detail : "", {
    status: response.status,
    transient: response.status === 429 || response.status >= 500,
    retryAfterMs: retryAfterMs(response),
  });
}

/**
 * The JSON body of a 2xx answer. Anything else (a front end's page where the
 * API was expected, a proxy's) fails like a proxy's 5xx page: transient.
 * `tokens`: a login or refresh answer, which must carry an access token.
 */
async function bodyOf(response, { tokens = false } = {}) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (body === undefined || (tokens && typeof body?.access !== "string")) {
    throw new AuthSocketError("bad_response", `HTTP ${response.status} without the expected JSON`, {
      status: response.status,
      transient: true,
    });
  }
  return body;
}

/** The claims of a JWT, unverified: only for display (`sid`), never for trust. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

export class AuthSocket extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    if (!["ticket", "subprotocol"].includes(this.options.transport)) {
      throw new TypeError(`transport must be "ticket" or "subprotocol", not ${this.options.transport}`);
    }
    this.wsUrl = this.options.wsUrl || defaultWsUrl(this.options.baseUrl);
    this.state = STATE.SIGNED_OUT;
    this.user = null;
    this.sid = null;
    this.stats = { connects: 0, refreshes: 0, renewals: 0, sharedTokens: 0, rotated: 0 };
    // The live socket's expiry as the server sees it (unix seconds, from
    // `welcome` and `auth.ok`); null while no socket is live.
    this.socketExpiresAt = null;

    this._access = null;
    this._expiresAt = 0; // local clock, ms
    this._ttlMs = 0;
    this._generation = 0; // bumped on sign-in/out so stale async work stops
    this._refreshing = null;
    this._tokenWaiters = new Set();
    this._lastShared = null; // { message, at }: the last token another tab shared
    // Cookie requests (login, refresh, logout) that timed out but were left to
    // finish (see `_fetch`): their AbortControllers, until they settle.
    this._lateCookies = new Set();
    // Of those, the refreshes: { landed: a promise settled with the answer, or
    // never rejected, until: how long a new refresh waits for it (ms) }.
    this._lateRefreshes = new Set();
    this._ws = null;
    this._opening = null; // the generation of the `_open()` in flight, if any
    this._welcomed = false;
    this._connectedWith = null;
    this._everLive = false;
    this._attempt = 0;
    this._refusals = 0;
    this._forceRefresh = false;
    // While a call that ends this session waits for its answer: the reason a
    // 4403 of this tab's own socket signs out with (not "revoked" from elsewhere).
    this._signingOut = null;
    // stream -> { lastId: the last id it has, or null, presence: bool, history: bool }
    this._streams = newStreams();
    this._presence = new Map(); // stream -> PresenceView, for streams subscribed with presence
    this._pending = new Map(); // ref -> { resolve, reject, kind, stream, frame, timer }
    // Subscribes of the live socket not sent yet, in order: stream -> the
    // `since` to send (undefined: the stream's own position when it goes out).
    this._subscribeQueue = new Map();
    // Backoff of the queue after `rate_limited` refusals (the timer holds it);
    // `requeued`: refused subscribes put back at its head during this hold.
    this._subscribeHold = { attempt: 0, requeued: 0 };
    this._authAttempt = 0; // `auth` frames refused `rate_limited` in a row
    this._nextRef = 1;
    this._timers = {
      refresh: null,
      reconnect: null,
      heartbeat: null,
      welcome: null,
      subscribe: null,
      auth: null,
    };
    this._lastFrameAt = 0;
    this._liveSince = 0; // when the current socket got `welcome` (ms)

    // Set by close(): no channel, no page listeners, no timer, no socket,
    // until resume(), login() or reconnect() opens the client again.
    this._closed = false;
    this._channel = null;
    this._listening = false;
    this._onOnline = () => this._wakeUp("online");
    this._onVisible = () => document.visibilityState === "visible" && this._wakeUp("visible");
    this._listen();
  }

  // ---- public API ---------------------------------------------------------

  get accessToken() {
    return this._access;
  }

  /** Resume a signed-in session from the refresh cookie; false when there is none. */
  async resume() {
    this._reopen();
    const generation = this._generation;
    this._setState(STATE.CONNECTING, "resume");
    for (let attempt = 0; ; attempt++) {
      try {
        await this.refresh();
        break;
      } catch (error) {
        if (generation !== this._generation) return this._access !== null;
        if (!error.transient) {
          this._signOutLocal(error.code || "resume_failed");
          return false;
        }
        // Server unreachable: we cannot tell yet whether we are signed in.
        this._setState(STATE.RECONNECTING, error.code);
        await this._delay(this._backoffMs(attempt, error.retryAfterMs));
        if (generation !== this._generation) return this._access !== null;
      }
    }
    this._open();
    return true;
  }

  /**
   * Sign in with a password; the refresh token goes to the HttpOnly cookie.
   * Rejects with code `cancelled` when close() (a sign-out, another login)
   * came while it waited: then it takes nothing and opens nothing.
   */
  async login(username, password) {
    this._reopen();
    const generation = ++this._generation; // supersedes a resume still waiting for the server
    this._refreshing = null;
    // The cookie this login sets must be the last one set: a cookie request
    // still on the way after its timeout (a logout's deletion, a refresh of
    // the old session) is dropped now, before it could land after this one.
    this._abortLateCookies();
    this._setState(STATE.CONNECTING, "login");
    let response;
    let body;
    try {
      response = await this._fetch("/api/auth/login", {
        method: "POST",
        cookie: true,
        body: { username, password },
      });
      body = response.ok ? await bodyOf(response, { tokens: true }) : await errorOf(response);
    } catch (error) {
      if (generation !== this._generation) throw new Cancelled();
      this._setState(STATE.SIGNED_OUT, error.code || "network");
      throw error;
    }
    // close() (or a sign-out, or another login) came meanwhile: take nothing.
    if (generation !== this._generation) throw new Cancelled();
    if (!response.ok) {
      this._setState(STATE.SIGNED_OUT, body.code);
      throw body;
    }
    this._adopt(body, { broadcast: true, fresh: true });
    this._open();
    return this.user;
  }

  /** Sign out this session (this tab and the other tabs that share it). */
  async logout() {
    // Read before the call: its own 4403 may sign this tab out first.
    const sid = this.sid;
    this._signingOut = "logout";
    try {
      await this.api("/api/auth/logout", { method: "POST", cookie: true });
    } catch {
      // Signing out locally is what matters; the session dies with its TTL.
    } finally {
      this._signingOut = null;
    }
    this._broadcast({ type: "signed-out", sid });
    this._signOutLocal("logout");
  }

  /** Revoke every session of the user, this one included. */
  async logoutAll() {
    const sid = this.sid;
    this._signingOut = "logout_all";
    try {
      await this.api("/api/auth/logout-all", { method: "POST" });
    } finally {
      this._signingOut = null;
    }
    this._broadcast({ type: "signed-out", sid });
    this._signOutLocal("logout_all");
  }

  /** Revoke every other session of the user. */
  async logoutOthers() {
    await this.api("/api/auth/logout-others", { method: "POST" });
  }

  sessions() {
    return this.api("/api/auth/sessions");
  }

  async revokeSession(sid) {
    const own = sid === this.sid;
    if (own) this._signingOut = "logout";
    try {
      await this.api(`/api/auth/sessions/${encodeURIComponent(sid)}`, { method: "DELETE" });
    } finally {
      if (own) this._signingOut = null;
    }
    if (own) {
      this._broadcast({ type: "signed-out", sid });
      this._signOutLocal("logout");
    }
  }

  /**
   * Call the HTTP API with the access token; answers parsed JSON (null for 204).
   * An expired token is refreshed once and the call retried; dead credentials
   * sign out. Failures throw AuthSocketError with the wire `code`.
   */
  async api(path, { method = "GET", body, cookie = false } = {}) {
    // The sign-in this call is made for. Answered after a sign-out (and maybe
    // another sign-in) on this client, a 401 speaks of the old token only: it
    // neither signs the new session out nor is retried with its token.
    const generation = this._generation;
    for (let attempt = 0; ; attempt++) {
      if (!this._access) throw new AuthSocketError("not_authenticated", "signed out");
      const response = await this._fetch(path, { method, body, cookie, auth: true });
      if (response.ok) {
        return response.status === 204 ? null : bodyOf(response);
      }
      const error = await errorOf(response);
      const current = generation === this._generation;
      if (current && response.status === 401 && error.code === "token_expired" && attempt === 0) {
        this._forceRefresh = true;
        await this.refresh();
        continue;
      }
      if (current && response.status === 401 && DEAD_CREDENTIALS.has(error.code)) {
        this._signOutLocal(error.code);
      }
      throw error;
    }
  }

  /**
   * Get a new access token from the refresh cookie. Only one refresh runs at a
   * time in this tab, and (with Web Locks) across all tabs of this browser.
   */
  refresh() {
    if (!this._refreshing) {
      const generation = this._generation;
      const running = this._refreshExclusive(generation).finally(() => {
        if (this._refreshing === running) this._refreshing = null;
      });
      this._refreshing = running;
    }
    return this._refreshing;
  }

  /**
   * Follow a stream. `since`: the last id the caller already has (0: all stored);
   * `presence: true` also keeps who is on it (rooms only, §4.4): see `presence`.
   */
  subscribe(stream, { since = null, presence = false } = {}) {
    let entry = this._streams.get(stream);
    if (!entry) {
      entry = { lastId: null, presence: false, history: true, ...unheld() };
      this._streams.set(stream, entry);
    }
    entry.presence = presence === true;
    // Asked again without presence, the server sends no more of it: a view kept would go stale.
    if (!entry.presence) this._dropPresence(stream, "unsubscribed");
    if (since !== null && since !== undefined) {
      entry.lastId = Math.max(entry.lastId ?? 0, since);
    }
    if (this._isLive()) {
      this._queueSubscribe(stream);
      this._pumpSubscribes();
    }
  }

  unsubscribe(stream) {
    this._streams.delete(stream);
    this._subscribeQueue.delete(stream); // never sent: it must not go out after this
    this._dropPresence(stream, "unsubscribed");
    if (this._isLive()) this._send({ type: "unsubscribe", stream });
  }

  /** The presence view of a stream subscribed with `presence: true`, or null. */
  presence(stream) {
    return this._presence.get(stream)?.toJSON() ?? null;
  }

  /** Ask once who is on a stream (subscribed or not); resolves with `{users, count, truncated}`. */
  async requestPresence(stream) {
    if (!this._isLive()) throw new AuthSocketError("not_connected", "the socket is not live");
    const frame = await this._request({ type: "presence", stream }, { kind: "presence", stream });
    const view = new PresenceView();
    view.snapshot(frame);
    return view.toJSON();
  }

  /** Publish over the socket; resolves with the stored message id. Never queued. */
  publish(stream, data) {
    if (!this._isLive()) {
      return Promise.reject(new AuthSocketError("not_connected", "the socket is not live"));
    }
    return this._request({ type: "publish", stream, data }, { kind: "publish", stream });
  }

  /** Round trip over the live socket; resolves with the time it took, in ms. */
  async ping() {
    if (!this._isLive()) throw new AuthSocketError("not_connected", "the socket is not live");
    const sentAt = performance.now();
    await this._request({ type: "ping" }, { kind: "ping" });
    return performance.now() - sentAt;
  }

  /** Try to connect now (after OFFLINE or close(), or to skip a backoff wait). */
  reconnect() {
    if (!this._access) return;
    if (this._closed) {
      this._reopen();
      // close() stopped the refresh timer: the token is kept fresh again.
      this._scheduleRefresh();
    }
    this._attempt = 0;
    this._refusals = 0;
    clearTimeout(this._timers.reconnect);
    this._open();
  }

  /**
   * Stop everything without signing out (the refresh cookie stays valid):
   * `offline` while a token is held (reconnect() opens a socket again), or
   * `signed-out`. The other tabs are no longer heard until it is opened again.
   */
  close() {
    this._generation++;
    this._closed = true;
    // A refresh or an open still on its way belongs to the old generation and
    // ends `cancelled`: what opens the client again must not wait on it.
    this._refreshing = null;
    this._clearTimers();
    this._closeSocket(CLOSE.NORMAL);
    this._unlisten();
    this._setState(this._access ? STATE.OFFLINE : STATE.SIGNED_OUT, "closed");
  }

  // ---- tokens ---------------------------------------------------------------

  async _refreshExclusive(generation) {
    const startedWith = this._access;
    const startedAt = Date.now();
    const run = async () => {
      if (generation !== this._generation) throw new Cancelled();
      // A refresh of ours that timed out may still be answered with the
      // newest cookie: the cookie we hold may be rotated already, so it does
      // not go out again before that answer lands (or its wait is over).
      await this._lateRefreshesLanded();
      if (generation !== this._generation) throw new Cancelled();
      // While we waited for the lock another tab may have refreshed and
      // shared its token (or our late answer was taken): nothing left to do.
      if (this._access && this._access !== startedWith && this._remainingMs() > this._marginMs()) {
        this._forceRefresh = false;
        return "shared";
      }
      return this._refreshOnce(generation, startedWith, startedAt, true);
    };
    if (this.options.useLocks && navigator.locks?.request) {
      return new Promise((resolve, reject) => {
        navigator.locks
          .request(REFRESH_LOCK, async () => {
            await run().then(resolve, reject);
            // The caller has its answer (after a timeout: `network`), but the
            // lock is kept while that refresh may still be answered (bounded):
            // no other tab sends the cookie it may have rotated meanwhile.
            await this._lateRefreshesLanded();
          })
          .catch(reject);
      });
    }
    return run();
  }

  async _refreshOnce(generation, startedWith, startedAt, mayRetry) {
    this.stats.refreshes++;
    const sentWith = this._access;
    const response = await this._fetch("/api/auth/refresh", {
      method: "POST",
      cookie: true,
      body: {},
      onLate: (answer) => this._awaitLateRefresh(answer, generation, sentWith),
    });
    if (generation !== this._generation) throw new Cancelled();
    if (response.ok) {
      const body = await bodyOf(response, { tokens: true });
      if (generation !== this._generation) throw new Cancelled();
      this._forceRefresh = false;
      this._adopt(body, { broadcast: true });
      return "refreshed";
    }
    const error = await errorOf(response);
    if (response.status === 401 && error.code === "token_rotated") {
      // Another tab refreshed with the same cookie a moment ago (§2): it won,
      // and its answer set the newest cookie. Take its token, or refresh again.
      this.stats.rotated++;
      if (await this._waitForSharedToken(startedWith, startedAt)) return "shared";
      if (generation !== this._generation) throw new Cancelled();
      if (this._lateRefreshes.size > 0) {
        // Or our own refresh that timed out won, and its answer (with the
        // newest cookie) is still on the way: the session is fine, only our
        // cookie is stale. Not a sign-out, and no retry with that cookie now.
        throw new AuthSocketError("token_rotated", error.detail, { status: 401, transient: true });
      }
      if (mayRetry) return this._refreshOnce(generation, startedWith, startedAt, false);
    }
    if (!error.transient) this._signOutLocal(error.code);
    throw error;
  }

  /**
   * A refresh that timed out (`_fetch` leaves it to finish): when its answer
   * lands, its cookie is already stored; its token is taken too, if this is
   * still the same sign-in and nothing newer was taken since it was sent.
   * That also wakes a refresh answered `token_rotated` meanwhile.
   */
  _awaitLateRefresh(answer, generation, sentWith) {
    const late = { until: Date.now() + this.options.requestTimeoutMs };
    late.landed = answer
      .then(async (response) => {
        if (!response.ok) return;
        const body = await bodyOf(response, { tokens: true });
        if (generation !== this._generation || this._access !== sentWith) return;
        this._forceRefresh = false;
        this._adopt(body, { broadcast: true });
      })
      .catch(() => {})
      .finally(() => this._lateRefreshes.delete(late));
    this._lateRefreshes.add(late);
  }

  /** Resolves once every late refresh has landed, or when their wait is over. */
  _lateRefreshesLanded() {
    const late = [...this._lateRefreshes];
    const waitMs = Math.max(0, ...late.map((entry) => entry.until - Date.now()));
    if (waitMs === 0) return Promise.resolve();
    let timer;
    return Promise.race([
      Promise.all(late.map((entry) => entry.landed)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  _abortLateCookies() {
    for (const controller of this._lateCookies) controller.abort();
    this._lateCookies.clear();
  }

  _waitForSharedToken(startedWith, startedAt) {
    if (this._access && this._access !== startedWith) return Promise.resolve(true);
    // The winner's token may have arrived before our own answer did.
    const shared = this._lastShared;
    if (shared && shared.at >= startedAt && (this.user === null || shared.message.user?.id === this.user.id)) {
      this._adoptShared(shared.message);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        this._tokenWaiters.delete(waiter);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this._tokenWaiters.delete(waiter);
        resolve(false);
      }, this.options.sharedTokenWaitMs);
      this._tokenWaiters.add(waiter);
    });
  }

  /** Take a login/refresh answer (or another tab's) as the current credentials. */
  _adopt(body, { broadcast = false, fresh = false, expiresAt = null } = {}) {
    const claims = claimsOf(body.access);
    const userChanged = this.user !== null && body.user && body.user.id !== this.user.id;
    const sessionChanged = this.sid !== null && claims.sid && claims.sid !== this.sid;
    if (fresh || userChanged) this._resetIdentity();
    const ttlMs = Math.max(1, Number(body.expires_in) || 0) * 1000;
    this._access = body.access;
    this._ttlMs = ttlMs;
    this._expiresAt = expiresAt ?? Date.now() + ttlMs;
    this.sid = claims.sid ?? this.sid;
    const announce = this.user === null;
    this.user = body.user ?? this.user;
    if (announce) this._emit("user", { user: this.user, sid: this.sid });
    if (broadcast) {
      this._broadcast({
        type: "token",
        access: body.access,
        expires_in: body.expires_in,
        expiresAt: this._expiresAt,
        user: this.user,
      });
    }
    for (const waiter of [...this._tokenWaiters]) waiter();
    this._scheduleRefresh();
    if (!fresh && (userChanged || sessionChanged)) {
      // A socket cannot change user or session: open a new one.
      this._closeSocket(CLOSE.NORMAL);
      this._open();
    } else if (this._isLive()) {
      this._sendAuth();
    }
  }

  _resetIdentity() {
    this._closeSocket(CLOSE.NORMAL);
    this._streams = newStreams();
    this._presence.clear();
    this.user = null;
    this.sid = null;
    this._everLive = false;
  }

  _remainingMs() {
    return this._expiresAt - Date.now();
  }

  // Refresh when half the lifetime is left, at most 30 s before exp (the
  // server warns with `auth.expiring` at a third, §4.2): short-lived tokens
  // keep a second or two for the refresh and the `auth` frame on a busy host.
  _marginMs() {
    return Math.min(30000, Math.max(2000, this._ttlMs / 2));
  }

  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    // A closed client refreshes when asked (api(), refresh()), never by itself:
    // each refresh rotates the cookie every tab shares.
    if (this._closed) return;
    // Jitter spreads the tabs out; the first one to refresh shares its token.
    const jitter = Math.random() * this._marginMs() * 0.2;
    const delay = Math.max(0, this._remainingMs() - this._marginMs() - jitter);
    this._timers.refresh = setTimeout(() => this._timedRefresh(), delay);
  }

  async _timedRefresh() {
    if (!this._access) return;
    const generation = this._generation;
    if (this.state === STATE.LIVE) this._setState(STATE.RENEWING, "refresh");
    try {
      await this.refresh();
      // Another tab's token may have been taken (and sent) already.
      if (this.state === STATE.RENEWING && !this._hasPending("auth")) {
        this._setState(STATE.LIVE, "renewed");
      }
    } catch (error) {
      // A network error comes back without a look at the generation: after
      // close() or a sign-out, arm nothing that would refresh again.
      if (error instanceof Cancelled || !error.transient || generation !== this._generation) return;
      if (this.state === STATE.RENEWING) this._setState(STATE.LIVE, "refresh_failed");
      // Try again while the token still works; if it runs out, the server
      // closes with 4401 and the reconnect path refreshes.
      const delay = Math.max(1000, Math.min(this._remainingMs() / 2, 5000), error.retryAfterMs);
      clearTimeout(this._timers.refresh);
      this._timers.refresh = setTimeout(() => this._timedRefresh(), delay);
    }
  }

  // ---- other tabs -----------------------------------------------------------

  /** Hear the other tabs and the page's online/visible events (once). */
  _listen() {
    if (this._listening) return;
    this._channel = this._newChannel();
    if (this._channel) this._channel.onmessage = (event) => this._onBroadcast(event.data);
    window.addEventListener("online", this._onOnline);
    document.addEventListener("visibilitychange", this._onVisible);
    this._listening = true;
  }

  _unlisten() {
    this._channel?.close();
    this._channel = null;
    window.removeEventListener("online", this._onOnline);
    document.removeEventListener("visibilitychange", this._onVisible);
    this._listening = false;
  }

  /** Undo close(): resume(), login() and reconnect() open the client again. */
  _reopen() {
    if (!this._closed) return;
    this._closed = false;
    this._listen();
  }

  _newChannel() {
    return typeof BroadcastChannel === "function" ? new BroadcastChannel(this.options.channelName) : null;
  }

  _broadcast(message) {
    // A closed client hears nothing, but what it does to the shared session
    // (a logout, a refresh that rotated the cookie) is still news to the
    // other tabs: it speaks on a channel of its own, closed at once.
    const channel = this._channel ?? this._newChannel();
    try {
      channel?.postMessage(message);
    } catch {
      // A closed channel: the other tabs refresh on their own.
    } finally {
      if (channel !== this._channel) channel?.close();
    }
  }

  _onBroadcast(message) {
    if (!message || typeof message !== "object") return;
    if (message.type === "token") {
      // Every tab of this browser shares one refresh cookie, hence one user.
      const sameUser = this.user !== null && message.user?.id === this.user.id;
      this._lastShared = { message, at: Date.now() };
      if (this._tokenWaiters.size > 0 && (sameUser || this.user === null)) {
        this._adoptShared(message);
      } else if (this.state === STATE.SIGNED_OUT && this._refreshing === null) {
        // Signed in from another tab of this browser: the cookie is ours too.
        this._adoptShared(message);
        this._open();
      } else if (sameUser && message.expiresAt > this._expiresAt) {
        this._adoptShared(message);
      }
    } else if (message.type === "signed-out" && this.sid && message.sid === this.sid) {
      this._signOutLocal("signed_out_in_another_tab");
    }
  }

  _adoptShared(message) {
    this.stats.sharedTokens++;
    this._adopt(message, { expiresAt: message.expiresAt });
  }

  // ---- socket ---------------------------------------------------------------

  /** Open and welcomed: frames may be sent. */
  _isLive() {
    return this._welcomed && this._ws !== null && this._ws.readyState === WebSocket.OPEN;
  }

  /** An `_open()` of this generation is on its way (one of an older one ends by itself). */
  _isOpening() {
    return this._opening === this._generation;
  }

  async _open() {
    if (this._closed || this._ws || this._isOpening() || !this._access) return;
    const generation = this._generation;
    this._opening = generation;
    clearTimeout(this._timers.reconnect);
    this._setState(this._everLive ? STATE.RECONNECTING : STATE.CONNECTING, "connect");
    try {
      if (this._forceRefresh || this._remainingMs() < this._marginMs()) await this.refresh();
      if (generation !== this._generation) return;
      // Ticket mode offers no subprotocol: a server that selects none would
      // make the browser fail a handshake that offered one.
      let protocols = [];
      let url = this.wsUrl;
      if (this.options.transport === "ticket") {
        const { ticket } = await this.api("/api/auth/ticket", { method: "POST" });
        if (generation !== this._generation) return;
        url += (url.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(ticket);
      } else {
        protocols = [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + this._access];
      }
      this._connectedWith = this._access;
      this._attach(new WebSocket(url, protocols));
    } catch (error) {
      if (error instanceof Cancelled || generation !== this._generation) return;
      if (this.state === STATE.SIGNED_OUT) return; // dead credentials
      this._emitError(error.code || "network", error.detail || String(error));
      this._scheduleReconnect(error.code || "network", error.retryAfterMs);
    } finally {
      if (this._opening === generation) this._opening = null;
    }
  }

  _attach(ws) {
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this._lastFrameAt = Date.now();
      this._awaitWelcome(ws);
    };
    ws.onmessage = (event) => {
      if (ws === this._ws) this._onFrame(event.data);
    };
    ws.onerror = () => {}; // a close event follows with the code
    ws.onclose = (event) => {
      if (ws !== this._ws) return;
      this._detach();
      this._onClose(event.code, opened);
    };
  }

  /**
   * Give up on an open socket that is not welcomed within `requestTimeoutMs`.
   * A server that accepts and never welcomes (a stuck consumer) would hold
   * the client connecting for ever: the heartbeat runs only once live.
   */
  _awaitWelcome(ws) {
    this._timers.welcome = setTimeout(() => {
      if (ws !== this._ws || this._welcomed) return;
      this._closeSocket(CLOSE.NORMAL);
      this._scheduleReconnect("welcome_timeout");
    }, this.options.requestTimeoutMs);
  }

  _detach() {
    // A socket welcomed a while ago earns a fresh backoff; `welcome` alone does
    // not, or a server that welcomes and drops at once is retried at step 0 forever.
    if (this._welcomed && Date.now() - this._liveSince >= MIN_LIFE_MS) this._attempt = 0;
    clearInterval(this._timers.heartbeat);
    clearTimeout(this._timers.welcome);
    clearTimeout(this._timers.auth);
    this._timers.auth = null;
    this._authAttempt = 0;
    this._ws = null;
    this._welcomed = false;
    this.socketExpiresAt = null;
    // Nobody is known to be anywhere without a socket; a resubscribe brings a snapshot.
    for (const stream of [...this._presence.keys()]) this._dropPresence(stream, "offline");
    // Queued subscribes go with their socket, like those in flight (rejected
    // below): the next `welcome` subscribes every stream again.
    this._clearSubscribeQueue();
    // What was held was never emitted: the next socket resumes from before it,
    // and the server sends it again. A fill under way sees this and stops.
    for (const entry of this._streams.values()) Object.assign(entry, unheld());
    for (const [ref, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(new AuthSocketError("disconnected", "the socket closed before the answer"));
      this._pending.delete(ref);
    }
  }

  _closeSocket(code) {
    const ws = this._ws;
    if (!ws) return;
    this._detach();
    try {
      ws.close(code);
    } catch {
      // Already closing.
    }
  }

  _onClose(code, opened) {
    if (this.state === STATE.SIGNED_OUT || !this._access) return;
    if (!opened) {
      // §4.3: a refused handshake reaches a browser as 1006 with no reason.
      this._emitClose(code, opened, CLOSE_ACTION.ASK_WHY);
      this._diagnoseRefusal();
      return;
    }
    switch (code) {
      case CLOSE.TOKEN_EXPIRED:
        this._emitClose(code, opened, CLOSE_ACTION.REFRESH_AND_RECONNECT);
        this._forceRefresh = true;
        this._scheduleReconnect("token_expired", 0, { immediate: this._mayRetryAtOnce() });
        break;
      case CLOSE.REVOKED:
        this._emitClose(code, opened, CLOSE_ACTION.SIGN_IN_AGAIN);
        this._signOutLocal(this._signingOut ?? "revoked");
        break;
      case CLOSE.TOO_MANY_CONNECTIONS:
        this._emitClose(code, opened, CLOSE_ACTION.LONG_BACKOFF);
        this._emitError("too_many_connections", "close another tab or device first");
        this._scheduleReconnect("too_many_connections", this.options.longBackoffMs);
        break;
      case CLOSE.RATE_LIMITED:
        this._emitClose(code, opened, CLOSE_ACTION.LONG_BACKOFF);
        this._emitError("rate_limited", "the server closed the socket for sending too fast");
        this._scheduleReconnect("rate_limited", 2 * this.options.longBackoffMs);
        break;
      case CLOSE.MESSAGE_TOO_LARGE:
      case CLOSE.BINARY_FRAME:
        // A bug in the caller; the offending frame is not resent.
        this._emitClose(code, opened, CLOSE_ACTION.BACKOFF);
        this._emitError(code === CLOSE.BINARY_FRAME ? "binary_frame" : "message_too_large", "");
        this._scheduleReconnect(`closed_${code}`);
        break;
      case CLOSE.SHUTTING_DOWN:
        this._emitClose(code, opened, CLOSE_ACTION.BACKOFF);
        this._scheduleReconnect("server_restarting");
        break;
      case CLOSE.NORMAL:
        this._emitClose(code, opened, CLOSE_ACTION.RECONNECT);
        this._scheduleReconnect("closed", 0, { immediate: this._mayRetryAtOnce() });
        break;
      default:
        this._emitClose(code, opened, CLOSE_ACTION.BACKOFF);
        this._scheduleReconnect(`dropped_${code}`);
    }
  }

  /** The first retry after a close is immediate, unless the socket died young. */
  _mayRetryAtOnce() {
    return this._attempt === 0 && Date.now() - this._liveSince >= MIN_LIFE_MS;
  }

  /** Report a close the server (or the network) made, before acting on it. */
  _emitClose(code, opened, action) {
    const meaning = opened
      ? (CLOSE_MEANING[code] ?? "closed")
      : "the handshake failed (a browser is told no reason)";
    this._emit("socket", { phase: "closed", code, opened, meaning, action, connection: this.stats.connects });
  }

  async _diagnoseRefusal() {
    const generation = this._generation;
    let response;
    try {
      response = await this._fetch("/api/me", { auth: true });
    } catch {
      // The server is unreachable: a plain drop, retried without a bound.
      if (generation === this._generation) this._scheduleReconnect("unreachable");
      return;
    }
    if (generation !== this._generation) return;
    this._refusals++;
    if (response.ok) {
      if (this._refusals > this.options.maxRefusals) {
        this._emitError("handshake_refused", "the server keeps refusing the socket; credentials are fine");
        this._setState(STATE.OFFLINE, "handshake_refused");
        return;
      }
      this._scheduleReconnect("handshake_refused");
      return;
    }
    const error = await errorOf(response);
    if (response.status === 401 && error.code === "token_expired" && this._refusals <= this.options.maxRefusals) {
      this._forceRefresh = true;
      this._scheduleReconnect("token_expired", 0, { immediate: true });
    } else if (response.status === 401) {
      this._signOutLocal(error.code);
    } else {
      this._scheduleReconnect(error.code, error.retryAfterMs);
    }
  }

  _backoffMs(attempt, minMs = 0) {
    const { backoffBaseMs, backoffCapMs } = this.options;
    const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** Math.min(attempt, 20));
    // "Equal jitter": never zero, never all clients at the same instant.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    // A floor (the long backoff of 4409/4429, a Retry-After) is waited in
    // full, plus up to half of it again: the clients it holds back spread out too.
    return delay >= minMs ? delay : minMs + Math.random() * (minMs / 2);
  }

  _scheduleReconnect(reason, minMs = 0, { immediate = false } = {}) {
    clearTimeout(this._timers.reconnect);
    const delay = immediate ? 0 : this._backoffMs(this._attempt, minMs);
    this._attempt++;
    this._setState(STATE.RECONNECTING, reason);
    this._timers.reconnect = setTimeout(() => this._open(), delay);
  }

  _wakeUp(reason) {
    if (!this._access) return;
    if (this._remainingMs() < this._marginMs() && this._refreshing === null) this._timedRefresh();
    if (this.state === STATE.RECONNECTING && !this._ws && !this._isOpening()) {
      clearTimeout(this._timers.reconnect);
      this._open();
    }
  }

  _startHeartbeat() {
    clearInterval(this._timers.heartbeat);
    const every = this.options.heartbeatMs;
    this._timers.heartbeat = setInterval(() => {
      if (!this._isLive()) return;
      if (Date.now() - this._lastFrameAt > 2 * every) {
        // No pong for two periods: the connection is half-open. Drop it.
        this._closeSocket(CLOSE.NORMAL);
        this._scheduleReconnect("heartbeat_timeout");
        return;
      }
      this._send({ type: "ping" });
    }, every);
  }

  _send(frame) {
    this._ws.send(JSON.stringify(frame));
  }

  _request(frame, { kind, stream = null }) {
    const ref = this._nextRef++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        reject(new AuthSocketError("timeout", `no answer to ${frame.type}`));
        if (kind === "subscribe") this._pumpSubscribes(); // its place in flight is free
      }, this.options.requestTimeoutMs);
      this._pending.set(ref, { resolve, reject, kind, stream, frame, timer });
      this._send({ ...frame, ref });
    });
  }

  _hasPending(kind) {
    return this._countPending(kind) > 0;
  }

  _countPending(kind) {
    let count = 0;
    for (const pending of this._pending.values()) if (pending.kind === kind) count++;
    return count;
  }

  _settle(ref, error, value) {
    const pending = this._pending.get(ref);
    if (!pending) return null;
    this._pending.delete(ref);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(value);
    return pending;
  }

  /**
   * Put a subscribe of `stream` in the queue of the live socket (once: a stream
   * already waiting keeps its place, and its frame is built when it goes out).
   * `since` overrides the stream's position (the `next_since` of a truncated
   * replay). The caller pumps, or `_onFrame` does after each frame.
   */
  _queueSubscribe(stream, since = undefined) {
    if (!this._streams.has(stream)) return;
    if (since !== undefined || !this._subscribeQueue.has(stream)) this._subscribeQueue.set(stream, since);
  }

  /** Send queued subscribes while fewer than SUBSCRIBES_IN_FLIGHT are unanswered and no hold is on. */
  _pumpSubscribes() {
    if (this._subscribeQueue.size === 0 || this._timers.subscribe !== null || !this._isLive()) return;
    let inFlight = this._countPending("subscribe");
    for (const [stream, since] of this._subscribeQueue) {
      if (inFlight >= SUBSCRIBES_IN_FLIGHT) break;
      this._subscribeQueue.delete(stream);
      if (this._sendSubscribe(stream, since)) inFlight++;
    }
  }

  /** One subscribe frame, answered or not; false when the stream is no longer wanted. */
  _sendSubscribe(stream, since = undefined) {
    const entry = this._streams.get(stream);
    if (!entry) return false;
    // `user` is subscribed by the server itself, without a `subscribed` frame:
    // asking anyway (never doubled) tells its `last_id`, so a drop before its
    // first message still resumes with `since`. A kind without history (§8)
    // numbers its messages but refuses `since`: it is followed from now.
    const from = entry.history ? (since ?? entry.lastId) : null;
    const frame = { type: "subscribe", stream };
    if (from !== null) frame.since = from;
    if (entry.presence) frame.presence = true;
    // Settled by its answer, a timeout or the socket's close; nobody awaits it.
    this._request(frame, { kind: "subscribe", stream }).catch((error) => {
      if (error.code === "timeout") this._unanswered(stream);
    });
    return true;
  }

  /** The resubscribe of `user` had no answer in time: nothing tells whether ids were skipped, so take what came. */
  _unanswered(stream) {
    const entry = this._streams.get(stream);
    if (!entry?.held || entry.answered) return;
    entry.answered = true;
    this._letGo(entry);
  }

  /**
   * A subscribe refused `rate_limited` ("not now", nothing about the stream):
   * back to the head of the queue, and the queue waits until the server's
   * bucket has refilled. The subscribes refused together (sent before the
   * first refusal came back) share one wait, and keep their order.
   */
  _retrySubscribe(stream) {
    const hold = this._subscribeHold;
    if (!this._subscribeQueue.has(stream)) {
      const queued = [...this._subscribeQueue];
      queued.splice(hold.requeued++, 0, [stream, undefined]);
      this._subscribeQueue = new Map(queued);
    }
    if (this._timers.subscribe !== null) return;
    hold.attempt++;
    // 0.5–1 s at first (with the defaults), doubling up to backoffCapMs while
    // nothing is accepted: the bucket refills N frames a second.
    this._timers.subscribe = setTimeout(() => {
      this._timers.subscribe = null;
      hold.requeued = 0;
      this._pumpSubscribes();
    }, this._backoffMs(hold.attempt));
  }

  /** Forget the queue and its hold: the socket closed, the next `welcome` subscribes everything again. */
  _clearSubscribeQueue() {
    clearTimeout(this._timers.subscribe);
    this._timers.subscribe = null;
    this._subscribeQueue.clear();
    this._subscribeHold = { attempt: 0, requeued: 0 };
  }

  _sendAuth() {
    clearTimeout(this._timers.auth); // this frame carries the newest token
    this._timers.auth = null;
    if (this.state === STATE.LIVE) this._setState(STATE.RENEWING, "auth");
    const connection = this.stats.connects;
    const ws = this._ws;
    const token = this._access;
    this._emit("socket", { phase: "renewing", connection, expiresAt: this.socketExpiresAt });
    this._request({ type: "auth", token }, { kind: "auth" }).then(
      (expiresAt) => {
        this.stats.renewals++;
        if (this._ws === ws) {
          this._connectedWith = token; // what the socket now holds
          this._authAttempt = 0;
        }
        this._emit("socket", { phase: "renewed", connection, expiresAt });
        if (this.state === STATE.RENEWING) this._setState(STATE.LIVE, "renewed");
      },
      (error) => {
        this._emit("socket", { phase: "renew_failed", connection, code: error.code });
        if (error.code === "invalid_token" && this._isLive()) {
          // A token this socket cannot take (another session): reconnect with it.
          this._closeSocket(CLOSE.NORMAL);
          this._open();
        } else if (error.code === "rate_limited" && this._ws === ws && this._isLive()) {
          // "Not now" (the socket's frame budget): send it again after a backoff.
          this._retryAuth();
        } else if (this.state === STATE.RENEWING && !this._hasPending("auth")) {
          this._setState(STATE.LIVE, "renew_failed");
        }
      },
    );
  }

  /**
   * After an `auth` refused `rate_limited`: once a backoff has passed, send the
   * newest token if this socket is still live and does not hold it yet (no
   * other `auth` carrying it on the way). The state stays `renewing` meanwhile.
   */
  _retryAuth() {
    clearTimeout(this._timers.auth);
    const ws = this._ws;
    this._authAttempt++;
    // From 0.5–1 s (with the defaults), doubling up to backoffCapMs. If the
    // token runs out first, the server closes with 4401 and a reconnect follows.
    this._timers.auth = setTimeout(() => {
      this._timers.auth = null;
      if (this._ws !== ws || !this._isLive() || this._hasPending("auth")) return;
      if (this._access && this._access !== this._connectedWith) {
        this._sendAuth();
      } else if (this.state === STATE.RENEWING) {
        this._setState(STATE.LIVE, "renewed");
      }
    }, this._backoffMs(this._authAttempt));
  }

  // ---- frames (§4.2) --------------------------------------------------------

  _onFrame(raw) {
    this._lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    // Own keys only: a type such as `__proto__` or `constructor` is one we do not know.
    const type = frame?.type;
    if (typeof type === "string" && Object.hasOwn(FRAME_HANDLERS, type) && !this._hold(frame)) {
      FRAME_HANDLERS[type].call(this, frame);
    }
    // An answer may have freed a place for a queued subscribe.
    this._pumpSubscribes();
  }

  /**
   * Keep a frame of `user` back while its earlier ids are still to come: its
   * messages from `welcome` until the resubscribe with `since` is answered,
   * then, while `_fillUser` reads the ids that answer's `reset` skipped, its
   * messages, truncations and answers. Each is handled later, in order.
   */
  _hold(frame) {
    const entry = typeof frame.stream === "string" ? this._streams.get(frame.stream) : undefined;
    if (!entry?.held || !HELD_KINDS.has(frame.type)) return false;
    if (frame.type === "subscribed" && !entry.answered) return false; // it tells whether to fill
    if (frame.type === "message" && entry.firstHere === null && Number.isInteger(frame.id)) {
      entry.firstHere = frame.id;
    }
    entry.held.push(frame);
    return true;
  }

  _onWelcome(frame) {
    this._refusals = 0;
    this._everLive = true;
    this._liveSince = Date.now();
    this.stats.connects++;
    this.sid = frame.session ?? this.sid;
    if (frame.user && !this.user) this.user = frame.user;
    this._welcomed = true;
    clearTimeout(this._timers.welcome);
    this.socketExpiresAt = frame.expires_at ?? null;
    this._startHeartbeat();
    this._emit("socket", {
      phase: "open",
      connection: this.stats.connects,
      expiresAt: this.socketExpiresAt,
      transport: this.options.transport,
    });
    this._setState(STATE.LIVE, "welcome");
    // `user` is live already: its frames wait for the answer to its `since`.
    for (const [stream, entry] of this._streams) {
      Object.assign(entry, unheld());
      if (stream === USER_STREAM && entry.lastId !== null && entry.history) entry.held = [];
    }
    // Queued in order and paced (SUBSCRIBES_IN_FLIGHT): `_onFrame` starts them.
    for (const stream of this._streams.keys()) this._queueSubscribe(stream);
    // Refreshed while the handshake ran: move the socket to the newer token.
    if (this._access !== this._connectedWith) this._sendAuth();
  }

  _onSubscribed(frame) {
    const pending = this._settle(frame.ref);
    this._subscribeHold.attempt = 0; // accepted: the bucket had room again
    const entry = this._streams.get(frame.stream);
    // The answer to the resubscribe of `user` its frames were held for.
    const first = Boolean(entry?.held) && !entry.answered;
    let skipped = null;
    if (first) entry.answered = true;
    if (entry && Number.isInteger(frame.last_id)) {
      if (frame.reset) {
        // Our position is past the server's end, or behind what it still keeps:
        // take what it sends from here (ids above `last_id`, or the kept rest).
        entry.lastId = Math.min(entry.lastId ?? 0, frame.last_id);
        if (first) skipped = this._resetOnUser(entry, pending?.frame?.since);
      } else if (entry.lastId === null) {
        // Subscribed "from now": a reconnect resumes here, missing nothing.
        entry.lastId = frame.last_id;
      }
    }
    this._emit("subscription", { stream: frame.stream, status: "subscribed" });
    if (first && skipped) this._fillUser(entry, ...skipped);
    else if (first) this._letGo(entry);
  }

  /**
   * A `reset` answering the resubscribe of `user`. The server sent live ids
   * before it read that subscribe, from `firstHere` on; they are held, and
   * come next. When `since` was under the one before it, the ids in between
   * can no longer come on this socket, but are still stored (§4.2): returns
   * that range, ends excluded, for `_fillUser`. Otherwise (a position past
   * the server's end) null.
   */
  _resetOnUser(entry, since) {
    if (entry.firstHere === null) return null;
    entry.lastId = Math.min(entry.lastId ?? 0, entry.firstHere - 1);
    if (!Number.isInteger(since) || since + 1 >= entry.firstHere) return null;
    return [since, entry.firstHere];
  }

  /**
   * Emit the `user` ids after `after` and under `before`, read over HTTP
   * (`GET /api/streams/user/messages?after=`, paged), as replayed messages,
   * then what was held. Dead credentials sign out, as on any call; another
   * failure, once its tries are spent, is an `error` event (the ids left
   * are skipped) and the held frames go on: the stream never stalls. A new
   * socket, a sign-out or an unsubscribe meanwhile ends it silently.
   */
  async _fillUser(entry, after, before) {
    const ws = this._ws;
    const held = entry.held;
    const current = () => this._ws === ws && entry.held === held && this._streams.get(USER_STREAM) === entry;
    try {
      while (after + 1 < before) {
        const page = await this._fillPage(after, current);
        if (!current()) return;
        const newer = page.filter((m) => Number.isInteger(m?.id) && m.id > after).sort((a, b) => a.id - b.id);
        const wanted = newer.filter((m) => m.id < before);
        for (const message of wanted) this._onMessage({ ...message, stream: USER_STREAM, replay: true });
        if (page.length < FILL_PAGE || wanted.length === 0 || wanted.length < newer.length) break;
        after = wanted[wanted.length - 1].id;
      }
    } catch (error) {
      if (!current()) return;
      this._emitError(
        error.code || "network",
        `user ids after #${entry.lastId} unread after a reset: ${error.detail || error.message || ""}`,
        { stream: USER_STREAM },
      );
    }
    if (current()) this._letGo(entry);
  }

  /** One page of `user` after `after`; a transient error is tried again after a backoff (and its Retry-After). */
  async _fillPage(after, current) {
    for (let attempt = 0; ; attempt++) {
      try {
        const page = await this.api(`/api/streams/${USER_STREAM}/messages?after=${after}&limit=${FILL_PAGE}`);
        if (!Array.isArray(page)) {
          throw new AuthSocketError("bad_response", "history that is no list", { transient: true });
        }
        return page;
      } catch (error) {
        if (!error.transient || attempt + 1 >= FILL_TRIES || !current()) throw error;
        await this._delay(this._backoffMs(attempt, error.retryAfterMs));
      }
    }
  }

  /** Handle what `entry` held, in order, and hold no more. */
  _letGo(entry) {
    const held = entry.held ?? [];
    entry.held = null;
    for (const frame of held) FRAME_HANDLERS[frame.type].call(this, frame);
    this._pumpSubscribes();
  }

  _onUnsubscribed(frame) {
    this._settle(frame.ref);
    if (frame.reason) {
      this._streams.delete(frame.stream);
      this._dropPresence(frame.stream, "unsubscribed");
      this._emit("subscription", { stream: frame.stream, status: "unsubscribed", reason: frame.reason });
    }
  }

  _onMessage(frame) {
    const entry = this._streams.get(frame.stream);
    if (entry) {
      // The server sends each stream's ids strictly increasing (§4.2); this
      // only guards against a frame of a socket already replaced.
      if (entry.lastId !== null && frame.id <= entry.lastId) return;
      entry.lastId = frame.id;
    }
    this._emit("message", frame);
  }

  _onPong(frame) {
    this._settle(frame.ref);
  }

  _onReplayTruncated(frame) {
    // More stored messages than one replay carries: ask for the rest.
    this._queueSubscribe(frame.stream, frame.next_since);
  }

  _onPublished(frame) {
    this._settle(frame.ref, null, frame.id);
  }

  _onAuthOk(frame) {
    this.socketExpiresAt = frame.expires_at ?? this.socketExpiresAt;
    this._settle(frame.ref, null, frame.expires_at);
  }

  _onAuthExpiring(frame) {
    this._emit("socket", { phase: "expiring", connection: this.stats.connects, expiresAt: frame.expires_at });
    // A renewal under way answers the warning: another refresh would rotate
    // the cookie every tab shares for nothing. That is a refresh running, an
    // `auth` on its way, or the warning of an `exp` the socket has left (it
    // crossed the `auth.ok` that moved it).
    if (this._refreshing !== null || this._hasPending("auth")) return;
    if (Number.isInteger(frame.expires_at) && frame.expires_at < (this.socketExpiresAt ?? -Infinity)) return;
    if (this._access !== this._connectedWith) {
      // Refreshed already, the `auth` not sent (waiting out `rate_limited`): send it now.
      if (this._isLive()) this._sendAuth();
      return;
    }
    // The refresh timer may have been throttled (background tab): act now.
    this._timedRefresh();
  }

  _onError(frame) {
    const error = new AuthSocketError(frame.code || "error", frame.detail || "");
    const pending = this._settle(frame.ref, error);
    const stream = frame.stream ?? pending?.stream ?? null;
    const entry = this._streams.get(stream);
    const refusedSince = pending?.kind === "subscribe" && pending.frame.since !== undefined;
    if (frame.code === "bad_request" && refusedSince && entry?.history) {
      // §8: this stream's kind keeps no history, so `since` is refused. Follow
      // it from now instead of losing it after every reconnect.
      entry.history = false;
      this._queueSubscribe(stream);
      return;
    }
    if (frame.code === "rate_limited" && pending?.kind === "subscribe") {
      // "Not now" (the socket's frame budget), nothing about the stream: ask
      // again after a backoff, if it is still wanted.
      if (entry) this._retrySubscribe(pending.stream);
      return;
    }
    // An `auth` refused "not now" is sent again (`_sendAuth`): no `error` event.
    if (frame.code === "rate_limited" && pending?.kind === "auth") return;
    if (frame.code === "forbidden" && stream && pending?.kind === "subscribe") {
      this._streams.delete(stream);
      this._dropPresence(stream, "unsubscribed");
      this._emit("subscription", { stream, status: "unsubscribed", reason: "forbidden" });
    }
    if (pending?.kind !== "publish") {
      this._emitError(error.code, error.detail, { stream, ref: frame.ref });
    }
  }

  // ---- presence (§4.4) ------------------------------------------------------

  _onPresence(frame) {
    // An answer to requestPresence(), or the snapshot after a subscribe (or an
    // unprompted one after a server-side outage): either replaces the view.
    this._settle(frame.ref, null, frame);
    const view = this._presenceView(frame.stream);
    // A snapshot without a list of users is no snapshot: the view stands.
    if (!view || (frame.users !== undefined && !Array.isArray(frame.users))) return;
    view.snapshot(frame);
    this._emitPresence(frame.stream, "snapshot", null);
  }

  _onPresenceJoin(frame) {
    if (this._presenceView(frame.stream)?.join(frame.user)) {
      this._emitPresence(frame.stream, "join", frame.user);
    }
  }

  _onPresenceLeave(frame) {
    if (this._presenceView(frame.stream)?.leave(frame.user)) {
      this._emitPresence(frame.stream, "leave", frame.user);
    }
  }

  /** The view of a stream this socket follows with presence; null otherwise. */
  _presenceView(stream) {
    if (!this._streams.get(stream)?.presence) return null;
    let view = this._presence.get(stream);
    if (!view) {
      view = new PresenceView();
      this._presence.set(stream, view);
    }
    return view;
  }

  _dropPresence(stream, change) {
    if (this._presence.delete(stream)) this._emitPresence(stream, change, null);
  }

  _emitPresence(stream, change, user) {
    const view = this._presence.get(stream) ?? new PresenceView();
    this._emit("presence", { stream, change, user, ...view.toJSON() });
  }

  // ---- state ----------------------------------------------------------------

  _signOutLocal(reason) {
    this._generation++;
    this._refreshing = null;
    this._clearTimers();
    this._closeSocket(CLOSE.NORMAL);
    this._access = null;
    this._expiresAt = 0;
    this._forceRefresh = false;
    this._attempt = 0;
    this._refusals = 0;
    this._everLive = false;
    this._streams = newStreams();
    this._presence.clear();
    const hadUser = this.user !== null;
    this.user = null;
    this.sid = null;
    this._setState(STATE.SIGNED_OUT, reason);
    if (hadUser) this._emit("user", { user: null, sid: null });
  }

  _clearTimers() {
    clearTimeout(this._timers.refresh);
    clearTimeout(this._timers.reconnect);
    clearInterval(this._timers.heartbeat);
    clearTimeout(this._timers.welcome);
    clearTimeout(this._timers.auth);
    this._timers.auth = null;
    this._clearSubscribeQueue();
  }

  _setState(state, reason = "") {
    if (state === this.state && state !== STATE.RECONNECTING) return;
    const previous = this.state;
    this.state = state;
    this._emit("state", { state, previous, reason });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _emitError(code, detail = "", extra = {}) {
    this._emit("error", { code, detail, ...extra });
  }

  _delay(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /**
   * One HTTP request; rejects with a transient `network` AuthSocketError when
   * it fails or has no answer within requestTimeoutMs. `onLate(answer)` gets
   * the promise of a cookie request's answer when it timed out.
   */
  async _fetch(path, { method = "GET", body, cookie = false, auth = false, onLate = null } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (cookie) Object.assign(headers, COOKIE_HEADER);
    if (auth && this._access) headers.Authorization = `Bearer ${this._access}`;
    const controller = new AbortController();
    const timeoutMs = this.options.requestTimeoutMs;
    let timer;
    try {
      const answer = fetch(new URL(path, this.options.baseUrl || window.location.href), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // The refresh cookie also travels to an API on another origin of the
        // same site (`baseUrl`, with AUTHSOCKET_CORS_ORIGINS): "same-origin"
        // would drop it there, and the session would end at the first refresh.
        credentials: cookie ? "include" : "same-origin",
        signal: controller.signal,
      });
      const timedOut = new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
          if (!cookie) {
            controller.abort();
            return;
          }
          // A cookie request is no longer waited for, but not aborted: the
          // server may have rotated the refresh token already, and the
          // browser drops the Set-Cookie of an aborted request, so its only
          // copy would be lost and the next refresh, with the old cookie,
          // be taken for theft (`token_reused`: the session revoked). Left to
          // finish, its late answer still sets the newest cookie.
          this._lateCookies.add(controller);
          answer.catch(() => {}).finally(() => this._lateCookies.delete(controller));
          onLate?.(answer);
        }, timeoutMs);
      });
      return await Promise.race([answer, timedOut]);
    } catch (error) {
      throw new AuthSocketError("network", String(error?.message || error), { transient: true });
    } finally {
      clearTimeout(timer);
    }
  }
}

const FRAME_HANDLERS = {
  welcome: AuthSocket.prototype._onWelcome,
  pong: AuthSocket.prototype._onPong,
  subscribed: AuthSocket.prototype._onSubscribed,
  unsubscribed: AuthSocket.prototype._onUnsubscribed,
  message: AuthSocket.prototype._onMessage,
  "replay.truncated": AuthSocket.prototype._onReplayTruncated,
  published: AuthSocket.prototype._onPublished,
  "auth.ok": AuthSocket.prototype._onAuthOk,
  "auth.expiring": AuthSocket.prototype._onAuthExpiring,
  presence: AuthSocket.prototype._onPresence,
  "presence.join": AuthSocket.prototype._onPresenceJoin,
  "presence.leave": AuthSocket.prototype._onPresenceLeave,
  error: AuthSocket.prototype._onError,
};
