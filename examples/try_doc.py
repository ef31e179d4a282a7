"""Alice and bob on `doc:1`, carol kept out (docs/extending.md, `make run-example`)."""

import asyncio

from authsocket_client import ApiClient, FrameError

URL = "http://127.0.0.1:8000"
PASSWORD = "authsocket-demo"


async def next_event(socket):
    async for event in socket:
        return event


async def main() -> None:
    alice, bob, carol = ApiClient(URL), ApiClient(URL), ApiClient(URL)
    for api, username in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await api.login(username, PASSWORD)
    async with alice.socket() as alice_ws, bob.socket() as bob_ws:
        print("alice:", await alice_ws.subscribe("doc:1"))
        print("bob:  ", await bob_ws.subscribe("doc:1"))
        number = await alice_ws.publish("doc:1", {"text": "Hello, Bob"})
        print(f"alice published #{number}")
        print("bob:  ", await next_event(bob_ws))
        print("bob reads the history:", await bob.stream_messages("doc:1", limit=1))

        async with carol.socket() as carol_ws:
            try:
                await carol_ws.subscribe("doc:1")
            except FrameError as refused:
                print("carol:", refused.code)

        # The owner takes the document back from bob: his subscription ends.
        await alice.request("DELETE", "/api/documents/1/collaborators/bob")
        print("bob:  ", await next_event(bob_ws))
        await alice.request("PUT", "/api/documents/1/collaborators/bob")  # share again
    for api in (alice, bob, carol):
        await api.aclose()


asyncio.run(main())
