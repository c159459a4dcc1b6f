"""A small synchronous client of the policy server (the robot side), wire-compatible with
``openpi-client``'s ``WebsocketClientPolicy``."""
from __future__ import annotations

from a2g_core.robot import wire


class ServerError(RuntimeError):
    """The server answered with an error (a text frame)."""


class PolicyClient:
    def __init__(self, uri: str, api_key: str | None = None, timeout: float = 30.0):
        from websockets.sync.client import connect
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        try:
            self.ws = connect(uri, additional_headers=headers, max_size=None, compression=None,
                              open_timeout=timeout)
        except OSError as e:
            raise ValueError(f"Cannot reach the policy server at {uri}: {e}.") from None
        self.metadata = wire.unpackb(self.ws.recv(timeout))
        self.timeout = timeout

    def infer(self, obs: dict) -> dict:
        self.ws.send(wire.packb(obs))
        reply = self.ws.recv(self.timeout)
        if isinstance(reply, str):
            raise ServerError(reply)
        return wire.unpackb(reply)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
