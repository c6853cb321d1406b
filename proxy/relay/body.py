"""An inference request's body: in memory up to 1 MiB, beyond that in an unlinked temporary file.

Bodies are read before the request queues, and a queue can hold many: image payloads would
otherwise keep the proxy's memory as large as the queue. A body over `SPILL_BYTES` waits on
disk instead (the file is unlinked at once, and gone when the request ends).
"""

from __future__ import annotations

import json
import tempfile
from typing import IO, Any

from aiohttp import web

from proxy import errors

__all__ = ["SPILL_BYTES", "RequestBody"]

SPILL_BYTES = 1 << 20
_READ_BYTES = 1 << 16


class RequestBody:
    """The bytes of one body, and its JSON document when asked."""

    __slots__ = ("_file", "_head", "size")

    def __init__(self, data: bytes = b"") -> None:
        self._head: bytes | bytearray = b""  # one chunk as it came; more are joined in a bytearray
        self._file: IO[bytes] | None = None
        self.size = 0
        self.append(data)

    @classmethod
    async def read(cls, request: web.Request, limit_bytes: int) -> RequestBody:
        """Read the request's whole body; PayloadTooLarge past `limit_bytes`."""
        body = cls()
        content = request.content
        try:
            while chunk := await content.read(_READ_BYTES):
                body.append(chunk)
                if body.size > limit_bytes:
                    raise errors.PayloadTooLarge(
                        f"request body is larger than max_body_mb ({limit_bytes >> 20} MiB)"
                    )
                if content.at_eof():  # the whole body is in: no read just to learn that
                    break
        except BaseException:
            body.close()
            raise
        return body

    def append(self, chunk: bytes) -> None:
        """Add bytes at the end, moving everything to a temporary file past SPILL_BYTES."""
        self.size += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
            return
        if not self._head:
            self._head = bytes(chunk)  # no copy for bytes, the usual case
        else:
            if isinstance(self._head, bytes):
                self._head = bytearray(self._head)
            self._head += chunk
        if len(self._head) > SPILL_BYTES:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._file.write(self._head)
            self._head = b""

    @property
    def on_disk(self) -> bool:
        """True when the body waits in a temporary file."""
        return self._file is not None

    def document(self) -> dict[str, Any]:
        """The body as a JSON object, or BadRequest saying why it is not one."""
        if self._file is not None:
            self._file.seek(0)
            raw: bytes | bytearray = self._file.read()
        else:
            raw = self._head
        if not raw.strip():
            raise errors.BadRequest("missing request body")
        try:
            doc: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(f"invalid JSON in request body: {exc}") from None
        except RecursionError:
            raise errors.BadRequest("invalid JSON in request body: nested too deeply") from None
        if not isinstance(doc, dict):
            raise errors.BadRequest(f"request body must be a JSON object, not {type(doc).__name__}")
        return doc

    def payload(self) -> bytes | IO[bytes]:
        """What to send upstream: the bytes, or the file from its start (again on a retry)."""
        if self._file is None:
            return self._head if isinstance(self._head, bytes) else bytes(self._head)
        self._file.seek(0)
        return self._file

    def replace(self, data: bytes) -> None:
        """Hold `data` instead (a body a pin rewrote), on disk too when it is large."""
        self.close()
        self.size = 0
        self.append(data)

    def close(self) -> None:
        """Drop the bytes and the temporary file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._head = b""
