"""The generator's stream is deterministic, valid input for /identify, and time-ordered."""
from __future__ import annotations

import phonenumbers
from reconcile.synth.generator import SAMPLE_PATH, generate, random_valid_phone, read_stream, write_stream

from reconcile.normalize import parse_identity


def test_same_seed_same_stream_and_other_seed_differs():
    first = list(generate(800, seed=3)[0])
    assert first == list(generate(800, seed=3)[0])
    assert first != list(generate(800, seed=4)[0])


def test_every_event_is_valid_identify_input_in_time_order():
    events, stats = generate(3000, seed=11)
    previous = ""
    for event in events:
        assert event["ts"] > previous
        previous = event["ts"]
        assert event["email"] is not None or event["phoneNumber"] is not None
        parse_identity({k: event[k] for k in ("email", "phoneNumber", "name")})
    assert stats.events == 3000
    for kind in ("email_typo", "plus_alias", "gmail_dots", "placeholder_email", "phone_national", "nickname"):
        assert stats.counts.get(kind, 0) > 0, kind


def test_generated_phones_are_valid():
    import random

    rng = random.Random(5)
    for region in ("US", "GB", "DE", "FR", "IN", "BR", "AU", "CA", "ES", "MX"):
        for _ in range(20):
            phone = random_valid_phone(rng, region)
            assert phonenumbers.is_valid_number(phonenumbers.parse(phone.e164, None)), phone


def test_gzip_round_trip(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    write_stream(path, 200, seed=1)
    assert list(read_stream(path)) == list(generate(200, seed=1)[0])
    assert len(list(read_stream(path, limit=50))) == 50


def test_committed_sample_is_what_the_generator_writes():
    assert list(read_stream(SAMPLE_PATH)) == list(generate(500, seed=0)[0])
