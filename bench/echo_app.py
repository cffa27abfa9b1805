"""The bare-framework ceiling ``bench/identify.py`` compares the service with: a Flask app
that parses the request's JSON and answers ``/identify`` with the service's exact JSON
shape (``contact`` and every field of ``match``) without touching a database. Served by
gunicorn or granian like the service, it measures what the framework and the server
alone cost on this machine, in the same run as the service."""
from __future__ import annotations

import uuid

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/identify")
def identify():
    body = request.get_json(silent=True) or {}
    email, phone = body.get("email"), body.get("phoneNumber")
    return jsonify({
        "contact": {
            "primaryContactId": 1,
            "emails": [email] if email else [],
            "phoneNumbers": [str(phone)] if phone else [],
            "secondaryContactIds": [],
        },
        "match": {
            "method": "exact",
            "requestId": uuid.uuid4().hex,
            "createdContactIds": [],
            "demotedContactIds": [],
            "relinkedContactIds": [],
            "pendingMergeIds": [],
            "guards": [],
            "modelVersion": "default",
            "score": None,
            "candidateId": None,
            "warnings": [],
        },
    })


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok", "database": "none"})
