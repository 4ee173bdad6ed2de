"""A lean keep-alive HTTP/1.1 client for benchmarks that share the machine with the server.

Client, server and PostgreSQL share this machine's two cores, so the client's CPU is taken from
what it measures. httpx spent about 4 ms of CPU per 1,000-event batch (request building, header
objects, its state machine), more than twice the raw path's psycopg client; a device's C or Go
client would spend a fraction of that on a different machine. This one writes the request as one
buffer and reads the answer by its Content-Length: nothing else, and enough for the benchmarks'
POSTs and GETs (it refuses what it does not handle rather than guessing).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class KeepAliveClient:
    """One connection; requests one after another on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def connect(cls, base: str) -> KeepAliveClient:
        url = urlsplit(base)
        if url.scheme != "http" or not url.hostname or not url.port:
            raise ValueError(f"expected http://host:port, got {base}")
        reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=1 << 20)
        return cls(reader, writer, f"{url.hostname}:{url.port}")

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of a POST."""
        return await self.request("POST", path, body, headers)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of a GET (``path`` with its query string, already encoded)."""
        return await self.request("GET", path, b"", headers)

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding":
                raise ValueError(f"unsupported Transfer-Encoding: {value.strip()}")
        if length is None:
            raise ValueError("answer without Content-Length")
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
