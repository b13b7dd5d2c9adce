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
        pytest.param(  # longer than Docker's 63 characters before the cut
            "jean-baptiste.de-la-fontaine@universite-paris-saclay.fr",
            "abcdefghijklmnopqrstuvwxyz-123",
            "mydocker-jean-baptiste-d-248a98b3--abcdefghijklmnopqrs-54a614e8",
            id="long-email-long-slug",
        ),
    ],
)
def test_service_names_are_pinned(username, server, expected):
    name = names.service_name("mydocker", username, server)
    assert name == expected
    assert SERVICE_NAME.match(name) and len(name) <= 63


LONGEST_SLUG = "abcdefghijklmnopqrstuvwxyz-123"  # 30 characters: the schema's longest


@pytest.mark.parametrize("prefix", ["mydocker", "mdt1a2b3cs", "a-longer-prefix-of-20"])
@pytest.mark.parametrize(
    "username", ["jean-baptiste.de-la-fontaine@universite-paris-saclay.fr", "alice@univ.fr", "ÉLÈVE.Ünïcode@X.fr"]
)
@pytest.mark.parametrize("server", [LONGEST_SLUG, "abcdefghijklmnopqr", "t-python-course-1-8729", "python"])
def test_names_fit_dockers_limits_for_long_usernames_and_slugs(prefix, username, server):
    """Docker refuses a service name over 63 characters and a secret name over 64: a start would fail."""
    service = names.service_name(prefix, username, server)
    assert SERVICE_NAME.match(service) and len(service) <= 63, service
    for kind in ("pw", "tk"):
        secret = names.secret_name(service, "0123abcd", kind)
        assert len(secret) <= 64 and re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", secret), secret
    # still distinct from the same user's other environments and from other users
    assert service != names.service_name(prefix, username, server[:-1] + "z")
    assert service != names.service_name(prefix, username + "x", server)


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
