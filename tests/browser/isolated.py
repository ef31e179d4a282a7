"""Script parts for tests that drive an `AuthSocket` of their own on a page.

Such a client is not the demo's: it is made with its own `channelName`, so
the page's client takes none of its tokens.
"""

# `c` signs alice in and is live when this part ends.
ALICE_LIVE = (
    "await c.login('alice', 'authsocket-demo');"
    "await new Promise((resolve) => {"
    "  if (c.state === 'live') resolve();"
    "  c.addEventListener('state', (e) => e.detail.state === 'live' && resolve());"
    "});"
)

# An isolated client, `window.__c` (not signed in yet). `window.__subscribed`
# counts the `subscribed` answers of each stream, `window.__texts` keeps the
# texts of its messages, `window.__refused` counts the `rate_limited` errors
# any socket of the page receives.
COUNTING_CLIENT = (
    "window.__subscribed = {}; window.__texts = {}; window.__refused = 0;"
    "const RealWebSocket = window.WebSocket;"
    "window.WebSocket = class extends RealWebSocket {"
    "  constructor(...args) {"
    "    super(...args);"
    "    this.addEventListener('message', (e) => {"
    "      if (JSON.parse(e.data).code === 'rate_limited') window.__refused++;"
    "    });"
    "  }"
    "};"
    "const { AuthSocket } = await import('/static/authsocket/client.js');"
    "const c = new AuthSocket({ transport: 'subprotocol', channelName: 'isolated' });"
    "window.__c = c;"
    "c.addEventListener('subscription', (e) => {"
    "  if (e.detail.status !== 'subscribed') return;"
    "  window.__subscribed[e.detail.stream] = (window.__subscribed[e.detail.stream] ?? 0) + 1;"
    "});"
    "c.addEventListener('message', (e) => {"
    "  (window.__texts[e.detail.stream] ??= []).push(e.detail.data.text);"
    "});"
)


def welcoming_socket(name: str, close_code: int, on_open: str) -> str:
    """A fake WebSocket class `name`: a server that answers `welcome` and
    closes with `close_code` at once, every time. `on_open` runs (as a
    statement) for each socket the client makes."""
    return f"""
class {name} {{
  static OPEN = 1;
  constructor() {{
    {on_open}
    this.readyState = 0;
    setTimeout(() => {{
      this.readyState = 1;
      this.onopen?.({{}});
      const welcome = {{ type: "welcome", user: {{ id: 1, username: "alice" }}, session: "s",
        expires_at: Math.floor(Date.now() / 1000) + 300, protocol: "1.1" }};
      this.onmessage?.({{ data: JSON.stringify(welcome) }});
      this.readyState = 3;
      this.onclose?.({{ code: {close_code} }});
    }}, 5);
  }}
  send() {{}}
  close() {{}}
}}
"""


def scripted_socket(name: str) -> str:
    """A fake WebSocket class `name`: a server that answers `welcome`, each
    `subscribe` with `subscribed` (`last_id` 0) and then, when it asks for
    presence, with the snapshot `window.__snapshots[stream]` if there is one;
    each `ping` with `pong`. Answers come a task later, as from a network.
    `window.__server` is the newest socket: `window.__server.push(frame)`
    hands the client a frame at once."""
    return f"""
class {name} {{
  static OPEN = 1;
  constructor() {{
    window.__server = this;
    this.readyState = 0;
    setTimeout(() => {{
      this.readyState = 1;
      this.onopen?.({{}});
      this.push({{ type: "welcome", user: {{ id: 1, username: "alice" }}, session: "s",
        expires_at: Math.floor(Date.now() / 1000) + 300, protocol: "1.1" }});
    }}, 5);
  }}
  push(frame) {{
    if (this.readyState === 1) this.onmessage?.({{ data: JSON.stringify(frame) }});
  }}
  send(text) {{
    const frame = JSON.parse(text);
    setTimeout(() => {{
      if (frame.type === "subscribe") {{
        this.push({{ type: "subscribed", stream: frame.stream, last_id: 0, ref: frame.ref }});
        const snapshot = (window.__snapshots ?? {{}})[frame.stream];
        if (frame.presence && snapshot) this.push({{ type: "presence", stream: frame.stream, ...snapshot }});
      }} else if (frame.type === "ping") {{
        this.push({{ type: "pong", ref: frame.ref }});
      }}
    }}, 0);
  }}
  close() {{
    this.readyState = 3;
  }}
}}
"""
