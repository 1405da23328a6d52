"""`store_backend`: each test using it runs once per store backend (only "local" so far; the
shared store joins the list when it is built), configured as a user would, through
SESSIONWARD_STORE, which child processes inherit."""

import pytest

BACKENDS = ("local",)


@pytest.fixture(params=BACKENDS)
def store_backend(request, monkeypatch):
    monkeypatch.setenv("SESSIONWARD_STORE", request.param)
    return request.param
