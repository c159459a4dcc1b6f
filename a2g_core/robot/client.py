"""A small synchronous client of the policy server (the robot side), wire-compatible with
``openpi-client``'s ``WebsocketClientPolicy``."""
from __future__ import annotations

from a2g_core.robot import wire


class ServerError(ValueError):
    """The server answered with an error (a text frame); its message is one sentence for the user."""


class PolicyClient:
    def __init__(self, uri: str, api_key: str | None = None, timeout: float = 30.0):
        from websockets.sync.client import connect
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        from websockets.exceptions import InvalidStatus, WebSocketException
        self.uri, self.timeout = uri, timeout
        try:
            self.ws = connect(uri, additional_headers=headers, max_size=None, compression=None,
                              open_timeout=timeout)
            self.metadata = wire.unpackb(self.ws.recv(timeout))
        except InvalidStatus as e:
            code = e.response.status_code
            raise ValueError(f"The policy server at {uri} refused the connection (HTTP {code})"
                             + ("; check the API key." if code == 401 else ".")) from None
        except (OSError, TimeoutError, WebSocketException) as e:
            raise ValueError(f"Cannot reach the policy server at {uri}: {e}.") from None

    def infer(self, obs: dict) -> dict:
        from websockets.exceptions import WebSocketException
        try:
            self.ws.send(wire.packb(obs))
            reply = self.ws.recv(self.timeout)
        except (OSError, TimeoutError, WebSocketException) as e:
            raise ValueError(f"Lost the policy server at {self.uri}: {e}.") from None
        if isinstance(reply, str):
            raise ServerError(reply)
        return wire.unpackb(reply)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
