"""Fixtures of the store tests: a real redis-server (tests/store/redis_server.py), and the
shared store configured as a user's processes would see it (`shared_store`)."""

import pytest

from store.redis_server import redis_server  # noqa: F401 - a fixture, found by pytest here


@pytest.fixture
def shared_store(redis_server, monkeypatch):  # noqa: F811 - the fixture above
    """SESSIONWARD_STORE pointing at a fresh redis-server, for this process and its children;
    the server."""
    from sessionward.store import shared

    monkeypatch.setenv("SESSIONWARD_STORE", redis_server.url)
    try:
        yield redis_server
    finally:
        shared.disconnect()


@pytest.fixture(params=["local", "redis"])
def claims_backend(request):
    """Each test using it runs on the local store and on a real redis-server."""
    if request.param == "redis":
        request.getfixturevalue("shared_store")
    return request.param
