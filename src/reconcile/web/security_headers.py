"""Security headers on every response, the JSON API's as much as the review UI's.

A JSON answer is never a page, so its policy forbids everything: were a browser made to
render one (a sniffed content type, a frame), nothing in it could run or load. Answers
carry personal data, so no cache keeps them. The review UI and the chart files set their
own, looser policies first; only headers still absent are added here.
"""
from __future__ import annotations

from flask import Flask, Response

API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _add(response: Response) -> Response:
    headers = response.headers
    for name, value in API_HEADERS.items():
        if name not in headers:
            headers[name] = value
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add)
