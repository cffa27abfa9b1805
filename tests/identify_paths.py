"""Request sequences that drive ``POST /identify`` down each of its paths, on a fresh
database (ids start at 1). The last request of a sequence is the one a test examines;
tests/test_match_object.py asserts its exact ``match`` lists, tests/test_openapi.py
validates every answer of every sequence against the OpenAPI document."""
from __future__ import annotations

JONATHAN = {"email": "jonathan.smith@gmail.com", "phoneNumber": "+14155552671", "name": "Jonathan Smith"}

PATHS: dict[str, list[dict]] = {
    # nobody shares anything: a primary (id 1), nothing to score it against
    "new primary": [JONATHAN],
    # the phone is known, the email new: a secondary (2) of 1
    "exact link": [JONATHAN, {"email": "jon@smith-works.org", "phoneNumber": "+14155552671"}],
    # nothing new: answered on the read path, nothing created
    "exact look-up": [JONATHAN, {"email": "Jonathan.Smith@gmail.com "}],
    # the seed's george/biffsucks, with a secondary (3) under the younger primary (2)
    "merge": [
        {"email": "george@hillvalley.edu", "phoneNumber": "919191"},
        {"email": "biffsucks@hillvalley.edu", "phoneNumber": "717171"},
        {"email": "biff@hillvalley.edu", "phoneNumber": "717171"},
        {"email": "george@hillvalley.edu", "phoneNumber": "717171"},
    ],
    # a plus alias with the same name: primary 2 is created, then linked under 1 by the model
    "probabilistic link": [JONATHAN, {"email": "Jonathan.Smith+shop@gmail.com", "name": "Smith Jonathan"}],
    # the exact stage adds 4 to group 2 (phone), the model then ties 4 to group 1 (plus
    # alias): 2 is demoted under 1, its older secondary 3 moves with it
    "exact then probabilistic link": [
        JONATHAN,
        {"phoneNumber": "+12025550143"},
        {"email": "jsmith@dc-office.org", "phoneNumber": "+12025550143"},
        {"email": "jonathan.smith+x@gmail.com", "phoneNumber": "+12025550143", "name": "Jonathan Smith"},
    ],
    # a shortened local part at the same provider, the same name: could be a namesake, so a
    # review is opened
    "probabilistic review": [JONATHAN, {"email": "jonathan.s@gmail.com", "name": "Jonathan Smith"}],
    # the phone is held by someone whose name clashes: a group of its own (no review: the
    # model clearly rejects the pair, tests/test_held_non_links.py)
    "guarded": [
        {"email": "alice@smith.org", "phoneNumber": "4155552671", "name": "Alice Smith"},
        {"email": "bob@smith.org", "phoneNumber": "4155552671", "name": "Bob Smith"},
    ],
}


def answers(client, path: str) -> list:
    """Every response of one path's sequence, each checked to be a 200."""
    responses = []
    for body in PATHS[path]:
        response = client.post("/identify", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        responses.append(response)
    return responses
