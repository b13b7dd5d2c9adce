"""Names are a contract (services, volumes and secrets are found again by them): pin them."""

import re

import pytest

from mydocker_hub.swarm import names

SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@pytest.mark.parametrize(
    "username, server, expected",
    [
        pytest.param("alice", "python", "mydocker-alice--python", id="plain"),
        pytest.param("Alice", "python", "mydocker-alice-3bc51062--python", id="uppercase-gets-hash"),
        pytest.param("alice@univ.fr", "python", "mydocker-alice-univ-fr-92df8c9a--python", id="email"),
        pytest.param(
            "jean-baptiste.de-la-fontaine@universite-paris-saclay.fr",
            "openssl-ssh",
            "mydocker-jean-baptiste-d-248a98b3--openssl-ssh",
            id="long-email",
        ),
        pytest.param("élève", "python", "mydocker-eleve-a9991c64--python", id="accents"),
        pytest.param("123", "python", "mydocker-u123-a665a459--python", id="digits"),
    ],
)
def test_service_names_are_pinned(username, server, expected):
    name = names.service_name("mydocker", username, server)
    assert name == expected
    assert SERVICE_NAME.match(name) and len(name) <= 63


def test_distinct_users_never_share_a_service():
    users = ["Alice", "alice", "ALICE", "alice@univ.fr", "alice.univ.fr", "alice_univ_fr"]
    assert len({names.service_name("mydocker", user, "python") for user in users}) == len(users)


@pytest.mark.parametrize(
    "username, environment, expected",
    [
        pytest.param("alice", None, "mydocker-home-alice", id="global"),
        pytest.param("alice", "python", "mydocker-home-alice--python", id="per-environment"),
        pytest.param("Bob@x.org", None, "mydocker-home-bob-x-org-0238b796", id="email-global"),
    ],
)
def test_home_volume_names_are_pinned(username, environment, expected):
    assert names.home_volume_name("mydocker", username, environment) == expected


@pytest.mark.parametrize(
    "username, expected",
    [
        pytest.param("alice", "alice", id="plain"),
        pytest.param("alice@univ.fr", "alice_92df8c9a", id="email"),
        pytest.param("Jean-Pierre", "jean_pierre_44931837", id="dash-and-case"),
        pytest.param("42", "u42_73475cb4", id="digits"),
    ],
)
def test_login_names_are_pinned(username, expected):
    login = names.login_name(username)
    assert login == expected
    assert re.match(r"^[a-z_][a-z0-9_-]{0,31}$", login)
