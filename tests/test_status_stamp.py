"""The status stamp: a token that every change a status line shows renews."""

import os

from sessionward import status_stamp


def test_every_touch_gives_a_new_token_of_one_length(state_dir):
    tokens = set()
    for _ in range(50):
        status_stamp.touch()
        token = status_stamp.read_token()
        assert len(token) == status_stamp.TOKEN_LENGTH
        tokens.add(token)
    assert len(tokens) == 50
    assert oct(os.stat(status_stamp.status_dir()).st_mode & 0o777) == "0o700"
    assert oct(os.stat(state_dir / "sessionward").st_mode & 0o777) == "0o700"


def test_a_heartbeat_renews_nothing_a_registration_does(state_dir, owners, tmp_path):
    from sessionward import registry

    owner = owners()
    registry.register_session(str(tmp_path), owner=owner, session_id="s1")
    before = status_stamp.read_token()
    registry.heartbeat(session_id="s1", owner=owner)
    assert status_stamp.read_token() == before
    registry.unregister_sessions(session_id="s1", owner=owner)
    assert status_stamp.read_token() != before


def test_touch_never_raises(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SESSIONWARD_HOME", str(blocker))  # a file where the directory should be
    status_stamp.touch()
    status_stamp.note_asked("s1", "edit x")
