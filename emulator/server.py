"""A small asyncio HTTP/1.1 server on h11 that can also drop a connection without answering.

uvicorn answers 500 when an ASGI app gives up before starting its response, so it cannot model
a connection lost mid-request; owning the socket here lets a "drop" fault close it for real,
and the client sees a transport error (httpx.RemoteProtocolError / ReadError).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

from .multipart import reason_phrase

logger = logging.getLogger("emulator.server")
MAX_BODY = 64 * 1024 * 1024


@dataclass(slots=True)
class HttpRequest:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Drop:
    """Returned by a handler to close the connection without sending any response."""


DROP = Drop()
Handler = Callable[[HttpRequest], Awaitable[HttpResponse | Drop]]


class _ClosedError(Exception):
    pass


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                try:
                    request = await self._read_request(connection, reader, writer)
                except h11.RemoteProtocolError as exc:
                    await self._send(connection, writer, _bad_request(str(exc)))
                    break
                if request is None:
                    break
                outcome = await self._handler(request)
                if isinstance(outcome, Drop):
                    writer.transport.abort()
                    break
                await self._send(connection, writer, outcome)
                if connection.our_state is h11.MUST_CLOSE:
                    break
                connection.start_next_cycle()
        except (_ClosedError, ConnectionError, h11.LocalProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("The emulator failed to serve a connection")
        finally:
            self._writers.discard(writer)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(
        connection: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HttpRequest | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                if connection.they_are_waiting_for_100_continue:
                    go_on = h11.InformationalResponse(status_code=100, headers=[])
                    writer.write(connection.send(go_on))
                data = await reader.read(65536)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise h11.RemoteProtocolError("Request body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                headers: dict[str, str] = {}
                for name, value in request.headers:
                    key = name.decode("latin-1").lower()
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
                method = request.method.decode("ascii").upper()
                return HttpRequest(method, request.target.decode("latin-1"), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:
                raise _ClosedError

    @staticmethod
    async def _send(
        connection: h11.Connection, writer: asyncio.StreamWriter, response: HttpResponse
    ) -> None:
        headers = list(response.headers)
        if response.status not in (204, 304):
            headers.append(("Content-Length", str(len(response.body))))
        reason = reason_phrase(response.status).encode()
        data = connection.send(
            h11.Response(status_code=response.status, headers=headers, reason=reason)
        )
        if response.body and response.status not in (204, 304):
            data += connection.send(h11.Data(data=response.body))
        data += connection.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()


def _bad_request(reason: str) -> HttpResponse:
    body = json.dumps(
        {"error": {"code": "0x80048d19", "message": f"Malformed HTTP request: {reason}"}}
    )
    return HttpResponse(
        400, [("Content-Type", "application/json"), ("Connection", "close")], body.encode()
    )
