"""The seed's worked examples come out exactly as the original contract writes them."""
from conftest import assert_sound


def identify(client, **body):
    response = client.post("/identify", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["contact"]


def test_lorraine_and_mcfly_share_a_phone_and_every_lookup_returns_the_group(client, store):
    identify(client, email="lorraine@hillvalley.edu", phoneNumber="123456")
    second = identify(client, email="mcfly@hillvalley.edu", phoneNumber="123456")
    expected = {
        "primaryContactId": 1,
        "emails": ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"],
        "phoneNumbers": ["123456"],
        "secondaryContactIds": [2],
    }
    assert second == expected
    assert identify(client, email=None, phoneNumber="123456") == expected
    assert identify(client, email="lorraine@hillvalley.edu", phoneNumber=None) == expected
    assert identify(client, email="mcfly@hillvalley.edu", phoneNumber=None) == expected
    assert identify(client, phoneNumber=123456) == expected
    assert store.counts()["contacts"] == 2
    assert_sound(store)


def test_george_and_biffsucks_primaries_merge_under_the_older(client, store):
    assert identify(client, email="george@hillvalley.edu", phoneNumber="919191")["primaryContactId"] == 1
    assert identify(client, email="biffsucks@hillvalley.edu", phoneNumber="717171")["primaryContactId"] == 2
    merged = identify(client, email="george@hillvalley.edu", phoneNumber="717171")
    assert merged == {
        "primaryContactId": 1,
        "emails": ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
        "phoneNumbers": ["919191", "717171"],
        "secondaryContactIds": [2],
    }
    assert store.counts()["contacts"] == 2
    assert_sound(store)
