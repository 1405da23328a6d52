"""Fixtures of the store tests: a real redis-server (tests/store/redis_server.py)."""

from store.redis_server import redis_server  # noqa: F401 - a fixture, found by pytest here
