// The demo page at `/`: wires AuthSocket (client.js) to plain DOM.
// User data is only ever put in the page with textContent, never innerHTML.

import { AuthSocket, CLOSE, STATE } from "./client.js";

const DEMO_PASSWORD = "authsocket-demo";
const LOG_KEPT = 200;
const TIMELINE_KEPT = 30;
const HISTORY_LIMIT = 50;
// Messages one list keeps: a page left open in a busy room drops the oldest.
const MESSAGES_KEPT = 200;
const COUNTDOWN_MS = 250; // smooth enough to see a 5 s token run out
// Longest message the send box takes. Checked on submit, not with `maxlength`:
// a browser cuts a longer paste there without a word.
const MESSAGE_MAX_CHARS = 2000;

const params = new URLSearchParams(window.location.search);
const client = new AuthSocket({
  transport: params.get("transport") === "subprotocol" ? "subprotocol" : "ticket",
});
// Tests and curious developers can reach the client from the console.
window.authsocketDemo = { client };

const $ = (id) => document.getElementById(id);
const panes = new Map(); // stream -> { section, list, status, online, onlineCount }
// Bumped whenever the signed-in user changes (resetApp): an answer to a
// request made before it is someone else's, and is dropped, not shown.
let epoch = 0;

function el(tag, { text, className, attrs } = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function time(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function log(text) {
  const list = $("log");
  const item = el("li", { text: `${new Date().toLocaleTimeString()} ${text}` });
  list.prepend(item);
  while (list.children.length > LOG_KEPT) list.lastElementChild.remove();
}

function clockTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

function showAlert(text) {
  const alert = $("alert");
  alert.textContent = text;
  alert.hidden = !text;
}

/** A room's name for people: its title, or its slug when the title is blank. */
function roomName(room) {
  return room.title || room.slug;
}

/**
 * Focus `target` when the focused element was just hidden (the sign-in form
 * after signing in, the account buttons after signing out): a keyboard user
 * must not be left on an element that is gone.
 */
function refocus(target) {
  const active = document.activeElement;
  if (!active || active === document.body || active.closest("[hidden]")) target.focus();
}

const ERROR_TEXT = {
  too_many_connections: "Too many open connections for this user: close a tab and it will retry.",
  rate_limited: "Sending too fast: the server is dropping frames (and closes the socket if it goes on).",
  handshake_refused: "The server keeps refusing the connection although you are signed in.",
  network: "The server cannot be reached; retrying.",
  forbidden: "Not allowed.",
};

// Who may have ended a session this tab did not sign out. A logout in another
// tab of this browser is among them: its 4403 reaches this tab's socket
// before the other tab's "signed out" message does.
const SIGNED_OUT_ELSEWHERE = "signed out in another tab, on another device or by an admin";

// Why the page went back to the sign-in form, when the user did not ask.
const SIGNED_OUT_TEXT = {
  revoked: `This session was ${SIGNED_OUT_ELSEWHERE}: sign in again.`,
  token_reused: "This session was ended: an old refresh token was used again (possible theft).",
  session_expired: "Your session expired; please sign in again.",
  signed_out_in_another_tab: "You signed out in another tab.",
  invalid_token: "Your sign-in is no longer valid; please sign in again.",
};

// ---- the socket and its token ---------------------------------------------
// The socket's expiry is the server's (`expires_at` of welcome / auth.ok), so
// the countdown shows when the server would close it with 4401.

const token = { expiresAt: null, lifetimeMs: 1, lastClose: null };

function timeline(phase, text) {
  const list = $("timeline");
  const item = el("li", { attrs: { "data-phase": phase } });
  item.append(el("time", { text: new Date().toLocaleTimeString() }), " ", el("span", { text }));
  list.prepend(item);
  while (list.children.length > TIMELINE_KEPT) list.lastElementChild.remove();
}

function setExpiry(expiresAt) {
  token.expiresAt = expiresAt;
  token.lifetimeMs = expiresAt ? Math.max(1, expiresAt * 1000 - Date.now()) : 1;
  tick();
}

/** Redraw the countdown; runs a few times a second, whatever the state. */
function tick() {
  const left = $("time-left");
  const bar = $("time-left-bar");
  if (!token.expiresAt) {
    left.textContent = "–";
    left.dataset.seconds = "";
    bar.value = 0;
    return;
  }
  const ms = Math.max(0, token.expiresAt * 1000 - Date.now());
  const seconds = Math.ceil(ms / 1000);
  left.textContent = `${seconds} s`;
  left.dataset.seconds = String(seconds);
  bar.value = Math.min(1, ms / token.lifetimeMs);
}
setInterval(tick, COUNTDOWN_MS);

// One handler per phase of the client's `socket` event.
const SOCKET_PHASES = {
  open({ connection, expiresAt, transport }) {
    token.lastClose = null;
    $("socket-number").textContent = `#${connection}, live (${transport})`;
    setExpiry(expiresAt);
    timeline("open", `socket #${connection} open: welcome, token expires at ${clockTime(expiresAt)}`);
  },
  expiring({ expiresAt }) {
    timeline("expiring", `server: auth.expiring (the token ends at ${clockTime(expiresAt)})`);
  },
  renewing({ connection }) {
    timeline("renewing", `auth → a fresh token sent on socket #${connection}`);
  },
  renewed({ connection, expiresAt }) {
    const gained = token.expiresAt ? expiresAt - token.expiresAt : 0;
    setExpiry(expiresAt);
    $("renewals").textContent = `${client.stats.renewals} time${client.stats.renewals === 1 ? "" : "s"}`;
    timeline(
      "renewed",
      `auth.ok ← socket #${connection} now expires at ${clockTime(expiresAt)} (+${gained} s), not reconnected`,
    );
  },
  renew_failed({ code }) {
    timeline("renew_failed", `auth refused (${code})`);
  },
  closed(detail) {
    token.lastClose = detail;
    $("socket-number").textContent = `#${detail.connection}, closed ${detail.code}`;
    setExpiry(null);
    timeline("closed", closeText(detail));
  },
};

function closeText({ connection, code, meaning, action }) {
  return `socket #${connection} closed ${code}: ${meaning} → the client will ${action}`;
}

client.addEventListener("socket", (event) => {
  SOCKET_PHASES[event.detail.phase]?.(event.detail);
});

// ---- connection state -------------------------------------------------------

const STATE_TEXT = {
  [STATE.CONNECTING]: "connecting",
  [STATE.LIVE]: "live",
  [STATE.RENEWING]: "renewing",
  [STATE.RECONNECTING]: "reconnecting",
  [STATE.OFFLINE]: "offline",
  [STATE.SIGNED_OUT]: "signed out",
};

client.addEventListener("state", (event) => {
  const { state, reason } = event.detail;
  $("state").dataset.state = state;
  $("state-text").textContent = STATE_TEXT[state] ?? state;
  document.body.dataset.state = state;
  log(`${state}${reason ? ` (${reason})` : ""}`);
  if (state === STATE.LIVE) showAlert("");
  if (state === STATE.OFFLINE) showAlert(ERROR_TEXT.handshake_refused);
  if (state === STATE.SIGNED_OUT) {
    $("login").hidden = false;
    $("app").hidden = true;
    showAlert(signedOutText(reason));
  }
});

/** Why the sign-in form is back; after a 4403 the close itself is shown. */
function signedOutText(reason) {
  const close = token.lastClose;
  if (reason === "revoked" && close?.code === CLOSE.REVOKED) {
    return `${closeText(close)}. It was ${SIGNED_OUT_ELSEWHERE}.`;
  }
  return SIGNED_OUT_TEXT[reason] ?? "";
}

client.addEventListener("error", (event) => {
  const { code, detail, stream } = event.detail;
  log(`error ${code}${stream ? ` on ${stream}` : ""}${detail ? `: ${detail}` : ""}`);
  if (ERROR_TEXT[code] && code !== "forbidden") showAlert(ERROR_TEXT[code]);
});

client.addEventListener("subscription", (event) => {
  const { stream, status, reason } = event.detail;
  log(`${status} ${stream}${reason ? ` (${reason})` : ""}`);
  const pane = panes.get(stream);
  if (pane && status === "unsubscribed") {
    pane.section.dataset.closed = "true";
    pane.status.textContent = "You can no longer read this room.";
    // The room was deleted, renamed or made private: the list says so too.
    loadRooms();
  }
});

client.addEventListener("user", (event) => {
  const { user } = event.detail;
  resetApp();
  if (!user) {
    refocus($("username")); // the sign-in form is back (the `state` event showed it)
    return;
  }
  $("who").textContent = `Signed in as ${user.username}`;
  $("who").hidden = false;
  $("account-actions").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;
  refocus($("who"));
  client.subscribe("user", { since: 0 }); // every stored notification, then live
  loadMe();
  loadRooms();
  loadSessions();
});

function resetApp() {
  epoch++;
  for (const pane of panes.values()) pane.section.remove();
  panes.clear();
  $("messages-user").replaceChildren();
  $("timeline").replaceChildren();
  $("renewals").textContent = "0 times";
  $("socket-number").textContent = "not open";
  setExpiry(null);
  $("rooms").replaceChildren();
  $("sessions").replaceChildren();
  $("who").hidden = true;
  $("account-actions").hidden = true;
  $("admin-link").hidden = true;
  delete document.body.dataset.me;
  delete document.body.dataset.rooms;
}

// ---- messages ---------------------------------------------------------------

function messageText(data) {
  if (data && typeof data === "object" && typeof data.text === "string") return data.text;
  return JSON.stringify(data);
}

function renderMessage(list, message) {
  const item = el("li", {
    className: "message",
    attrs: { "data-id": String(message.id), "data-testid": "message" },
  });
  item.append(
    el("span", { className: "from", text: message.sender ? message.sender.username : "server" }),
    el("span", { className: "text", text: messageText(message.data) }),
    el("time", {
      text: message.ts_ms ? new Date(message.ts_ms).toLocaleTimeString() : "",
      attrs: message.ts_ms ? { datetime: new Date(message.ts_ms).toISOString() } : {},
    }),
  );
  list.append(item);
  while (list.children.length > MESSAGES_KEPT) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

client.addEventListener("message", (event) => {
  const message = event.detail;
  const list = message.stream === "user" ? $("messages-user") : panes.get(message.stream)?.list;
  if (list) renderMessage(list, message);
});

// ---- presence (who is subscribed to a room now) ------------------------------

function renderPresence(pane, { users, count, truncated, change }) {
  const items = users
    .slice()
    .sort((a, b) => a.username.localeCompare(b.username))
    .map((user) => {
      const item = el("li", { text: user.username, attrs: { "data-user-id": String(user.id) } });
      if (user.id === client.user?.id) item.append(" ", el("small", { text: "(you)" }));
      return item;
    });
  pane.online.replaceChildren(...items);
  pane.onlineCount.textContent = users.length ? `(${count}${truncated ? ", not all listed" : ""})` : "";
  // Without a socket nobody is known to be here: an empty list is no news.
  pane.onlineEmpty.textContent =
    change === "offline" ? "Not known while the connection is down." : "Nobody listed yet.";
}

client.addEventListener("presence", (event) => {
  const pane = panes.get(event.detail.stream);
  if (pane) renderPresence(pane, event.detail);
});

// ---- rooms ------------------------------------------------------------------

async function loadRooms() {
  const asked = epoch;
  let rooms;
  try {
    rooms = await client.api("/api/rooms");
  } catch (error) {
    if (asked !== epoch) return;
    log(`rooms: ${error.code}`);
    document.body.dataset.rooms = "failed";
    return;
  }
  if (asked !== epoch) return;
  const list = $("rooms");
  list.replaceChildren();
  for (const room of rooms) {
    const item = el("li", { attrs: { "data-testid": `room-${room.slug}`, "data-slug": room.slug } });
    item.append(
      el("span", { className: "room-title", text: roomName(room) }),
      el("span", { className: `tag ${room.public ? "public" : "private"}`, text: room.public ? "public" : "private" }),
    );
    if (room.member) {
      item.append(el("span", { className: "tag member", text: "member" }));
      openPane(room);
    } else {
      const join = el("button", {
        text: "Join",
        attrs: { type: "button", "data-testid": `join-${room.slug}`, "aria-label": `Join ${roomName(room)}` },
      });
      join.addEventListener("click", () => joinRoom(room.slug));
      item.append(join);
    }
    list.append(item);
  }
  document.body.dataset.rooms = "loaded";
}

async function joinRoom(slug) {
  try {
    await client.api(`/api/rooms/${encodeURIComponent(slug)}/membership`, { method: "POST" });
    log(`joined ${slug}`);
  } catch (error) {
    showAlert(`Could not join ${slug}: ${error.code}`);
  }
  await loadRooms();
}

async function openPane(room) {
  const stream = `room:${room.slug}`;
  if (panes.has(stream)) return;
  const section = $("pane-template").content.firstElementChild.cloneNode(true);
  const titleId = `pane-title-${room.slug}`;
  const inputId = `send-${room.slug}`;
  section.dataset.testid = `pane-${stream}`;
  section.dataset.stream = stream;
  section.setAttribute("aria-labelledby", titleId);
  const title = section.querySelector(".pane-title");
  title.id = titleId;
  title.textContent = roomName(room);
  const list = section.querySelector(".messages");
  list.dataset.testid = `messages-${stream}`;
  section.querySelector(".messages-empty").dataset.testid = `messages-empty-${stream}`;
  const online = section.querySelector(".online-list");
  online.dataset.testid = `online-${stream}`;
  online.setAttribute("aria-label", `Online now in ${roomName(room)}`);
  const onlineEmpty = section.querySelector(".online-empty");
  onlineEmpty.dataset.testid = `online-empty-${stream}`;
  const onlineCount = section.querySelector(".online-count");
  const label = section.querySelector(".send-label");
  label.htmlFor = inputId;
  label.textContent = `Message to ${roomName(room)}`;
  const input = section.querySelector(".send-input");
  input.id = inputId;
  input.dataset.testid = `send-input-${stream}`;
  const button = section.querySelector(".send-button");
  button.dataset.testid = `send-${stream}`;
  const status = el("p", { className: "pane-status", attrs: { role: "status" } });
  section.append(status);
  const form = section.querySelector(".send");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const length = [...text].length;
    if (length > MESSAGE_MAX_CHARS) {
      status.textContent = `Not sent: ${length} characters, at most ${MESSAGE_MAX_CHARS}.`;
      return;
    }
    button.disabled = true;
    try {
      await client.publish(stream, { text });
      input.value = "";
      status.textContent = "";
    } catch (error) {
      status.textContent = notSentText(error);
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
  panes.set(stream, { section, list, status, online, onlineCount, onlineEmpty });
  $("panes").append(section);

  // History over HTTP, then the socket from the last id on: no gap, no double.
  let since = 0;
  try {
    const history = await client.api(
      `/api/rooms/${encodeURIComponent(room.slug)}/messages?limit=${HISTORY_LIMIT}`,
    );
    for (const message of history) renderMessage(list, { ...message, stream });
    if (history.length) since = history[history.length - 1].id;
  } catch (error) {
    log(`history of ${stream}: ${error.code}; replaying from the socket`);
  }
  if (panes.get(stream)?.section === section) client.subscribe(stream, { since, presence: true });
}

/** Why a publish failed, in words; the socket's close says it when it took the message along. */
function notSentText(error) {
  // The server closes the socket on a message over its size limit (4413): the
  // publish fails `disconnected`, after the close was reported.
  if (error.code === "disconnected" && token.lastClose?.code === CLOSE.MESSAGE_TOO_LARGE) {
    return "Not sent: too large for this server (it closed the connection with 4413). Shorten it.";
  }
  return `Not sent (${error.code}).`;
}

// ---- account ----------------------------------------------------------------

async function loadMe() {
  const asked = epoch;
  try {
    const me = await client.api("/api/me");
    if (asked !== epoch) return;
    $("admin-link").hidden = !me.is_staff;
  } catch (error) {
    if (asked !== epoch) return;
    log(`me: ${error.code}`);
  }
  document.body.dataset.me = "loaded";
}

function describeAgent(agent) {
  if (!agent) return "unknown client";
  const match = agent.match(/(Firefox|Edg|Chrome|Chromium|Safari)\/[\d.]+/);
  return match ? match[0] : agent.slice(0, 60);
}

async function loadSessions() {
  const asked = epoch;
  let sessions;
  try {
    sessions = await client.api("/api/auth/sessions");
  } catch (error) {
    if (asked === epoch) log(`sessions: ${error.code}`);
    return;
  }
  if (asked !== epoch) return;
  const list = $("sessions");
  list.replaceChildren();
  for (const session of sessions) {
    const item = el("li", {
      attrs: { "data-testid": "session", "data-sid": session.id, "data-current": String(session.current) },
    });
    const what = el("span", { className: "session-agent", text: describeAgent(session.user_agent) });
    if (session.user_agent) what.title = session.user_agent;
    item.append(what);
    if (session.current) item.append(el("span", { className: "tag member", text: "this browser" }));
    item.append(
      el("span", {
        className: "session-times",
        text: `signed in ${time(session.created_at)}, last used ${time(session.last_used_at)}`,
      }),
    );
    const revoke = el("button", {
      text: "Log out this one",
      className: "revoke",
      attrs: { type: "button", "data-testid": "revoke-session" },
    });
    revoke.addEventListener("click", async () => {
      try {
        await client.revokeSession(session.id);
      } catch (error) {
        showAlert(`Could not log that session out: ${error.code}`);
      }
      if (client.user) loadSessions();
    });
    item.append(revoke);
    list.append(item);
  }
}

$("sessions-reload").addEventListener("click", loadSessions);

$("logout-others").addEventListener("click", async () => {
  try {
    await client.logoutOthers();
    log("logged out every other session");
  } catch (error) {
    showAlert(`Could not log the other sessions out: ${error.code}`);
  }
  loadSessions();
});

$("logout").addEventListener("click", () => client.logout());

$("logout-all").addEventListener("click", async () => {
  try {
    await client.logoutAll();
  } catch (error) {
    showAlert(`Could not log out everywhere: ${error.code}`);
  }
});

// ---- sign in ----------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("login-error");
  error.hidden = true;
  const username = $("username").value.trim();
  if (!username) {
    error.textContent = "Enter a username.";
    error.hidden = false;
    $("username").focus();
    return;
  }
  $("login-submit").disabled = true;
  try {
    await client.login(username, $("password").value);
    $("password").value = "";
  } catch (failure) {
    error.textContent = signInFailedText(failure);
    error.hidden = false;
    $("password").focus();
  } finally {
    $("login-submit").disabled = false;
  }
});

/** One message for a wrong username and a wrong password alike: nothing tells which. */
function signInFailedText(failure) {
  if (failure.code === "invalid_credentials") return "Wrong username or password.";
  if (failure.code === "throttled") {
    // The server's words say how long: its limits are settings, "a minute" is
    // only the default's (and the client caps the Retry-After it reads at one).
    return `Too many attempts. ${failure.detail || "Try again later."}`;
  }
  if (failure.code === "network") return "The server cannot be reached; try again in a moment.";
  return `Sign-in failed (${failure.code}).`;
}

for (const button of document.querySelectorAll("button.fill")) {
  button.addEventListener("click", () => {
    $("username").value = button.dataset.username;
    $("password").value = DEMO_PASSWORD;
    $("login-submit").focus();
  });
}

// The sign-in form was painted by the server; it works from here on.
$("login-submit").disabled = false;
$("login-status").textContent = "Looking for a session of this browser…";
window.authsocketDemo.ready = client.resume().then((resumed) => {
  $("login-status").textContent = "";
  if (!resumed) {
    $("login").hidden = false;
  }
  document.body.dataset.ready = "true";
  return resumed;
});
