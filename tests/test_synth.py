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


def test_the_stream_writes_identifiers_the_way_real_systems_do():
    events, stats = generate(5_000, seed=3)
    events = list(events)
    kinds = {k for k in stats.counts if k.startswith("format_")}
    assert kinds == {f"format_{kind}" for kind in (
        "tel_uri", "nbsp", "apostrophe", "extension", "mailto", "angle_brackets", "space_at", "trailing_dot")}
    assert any(str(e["phoneNumber"]).startswith("tel:") for e in events)
    assert any(isinstance(e["email"], str) and e["email"].startswith("<") for e in events)


def test_real_world_formats_change_nothing_else_in_a_seeded_stream():
    from reconcile.synth.generator import Rates

    plain = list(generate(2_000, seed=5, rates=Rates(real_world_format=0.0))[0])
    noisy = list(generate(2_000, seed=5)[0])
    assert [(e["ts"], e["person"], e["name"]) for e in plain] == [(e["ts"], e["person"], e["name"]) for e in noisy]
    changed = [(a, b) for a, b in zip(plain, noisy) if a != b]
    assert 0 < len(changed) < 0.05 * len(plain)
