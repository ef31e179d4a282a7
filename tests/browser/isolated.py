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
