"""The request body limit, for every way a body can arrive.

Werkzeug enforces ``MAX_CONTENT_LENGTH`` on a ``Content-Length`` up front, but a body
sent with ``Transfer-Encoding: chunked`` has no length: werkzeug then reads up to the
limit and stops *without* an error, so a longer body was silently cut at 64 KiB (and a
JSON object padded with whitespace was accepted and written from its first 64 KiB).
"""
from __future__ import annotations

import io
import typing as t
from functools import cached_property

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream


class BoundedRequest(Request):
    """A Flask request whose length-less (chunked) body is read whole, up to one byte
    past the limit, before the app sees it: more than the limit is a 413, never a cut."""

    @cached_property
    def stream(self) -> t.IO[bytes]:
        limit = self.max_content_length
        terminated = "wsgi.input_terminated" in self.environ  # the server de-chunks and ends it
        if limit is None or self.content_length is not None or not terminated or self.shallow:
            return super().stream
        body = LimitedStream(self.environ["wsgi.input"], limit + 1, is_max=True).readall()
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return io.BytesIO(body)
