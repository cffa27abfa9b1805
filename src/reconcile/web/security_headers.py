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


#: the headers as a WSGI header list, for the answers written without a Flask response
API_HEADER_LIST = tuple(API_HEADERS.items())
#: (lower-cased name, name, value) of each header, for the one pass below
_LOWERED = tuple((name.lower(), name, value) for name, value in API_HEADERS.items())


def _add(response: Response) -> Response:
    """Add each header the response does not have yet. The names present are collected in
    one pass: werkzeug's ``name in headers`` scans every header and raises (and catches) an
    exception per absent one, and ``headers[name] = value`` scans them again; the six of
    them cost 50-100 us a request, a tenth of a look-up's CPU (bench/README.md)."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    for lowered, name, value in _LOWERED:
        if lowered not in present:
            headers.add(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add)
