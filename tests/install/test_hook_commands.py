"""Which commands are sessionward's own: by what they run, whatever else the user wrote."""

import pytest
from hypothesis import given, settings, strategies as st

from sessionward.install.hook_commands import EDITED, MENTIONS, PRISTINE, attribute, launcher_of

ARGS = ("hook", "Stop")


@pytest.mark.parametrize("command, kind, detail", [
    ("/opt/sw/bin/sessionward hook Stop", PRISTINE, "/opt/sw/bin/sessionward"),
    ("'/home/me/my venv/bin/sessionward' hook Stop", PRISTINE, "/home/me/my venv/bin/sessionward"),
    ("/home/me/my\\ venv/bin/sessionward hook Stop", EDITED, "/home/me/my venv/bin/sessionward"),
    ("/opt/sw/bin/sessionward hook Stop 2>>~/hook.log", EDITED, "/opt/sw/bin/sessionward"),
    ("/opt/sw/bin/sessionward hook Stop 2> ~/hook.log", EDITED, "/opt/sw/bin/sessionward"),
    ("/opt/sw/bin/sessionward hook Stop &>/dev/null </dev/null", EDITED, "/opt/sw/bin/sessionward"),
    ("sessionward hook Stop", EDITED, "sessionward"),
    ("env -u DEBUG sessionward hook Stop", EDITED, "sessionward"),
    ("A=1 B=2 timeout -k 2 5 sessionward hook Stop", EDITED, "sessionward"),
    ("sessionward hook Stop | tee x", MENTIONS, "it is part of a longer shell command"),
    ("sessionward hook Stop || true", MENTIONS, "it is part of a longer shell command"),
    ("sessionward hook Stop << EOF", MENTIONS, "it is part of a longer shell command"),
    ("sessionward hook Stop `date`", MENTIONS, "it is part of a longer shell command"),
    ("sessionward hook Stop >", MENTIONS, "it is part of a longer shell command"),
    ("{ sessionward hook Stop; }", MENTIONS, "it is part of a longer shell command"),
    ("sudo sessionward hook Stop", MENTIONS, "sessionward is not the program it runs"),
    ("A=1", None, ""),
    ("<0", None, ""),
    (">", None, ""),
    ("", None, ""),
    (None, None, ""),
    (["sessionward"], None, ""),
])
def test_attribution(command, kind, detail):
    assert attribute(command, ARGS) == (kind, detail)


def test_launcher_of_is_the_launcher_only_for_our_own():
    assert launcher_of("timeout 5 /x/sessionward status-line", ("status-line",)) == "/x/sessionward"
    assert launcher_of("/x/sessionward status-line; date", ("status-line",)) is None


SHELLISH = st.text(st.sampled_from(list("sessionward hook Stop<>|&;()$`'\"\\ 0129=-~/\n\tx")), max_size=40)


@settings(max_examples=2000, deadline=None)
@given(SHELLISH)
def test_any_command_text_gets_an_answer(command):
    kind, detail = attribute(command, ARGS)
    assert kind in (PRISTINE, EDITED, MENTIONS, None) and isinstance(detail, str)
    assert kind is None or "sessionward" in command


def test_the_status_lines_fast_path_is_ours():
    from sessionward.install.hook_commands import status_line_command

    pristine = status_line_command("/x/bin/sessionward", "/y/sessionward/install/status_line.sh")
    assert pristine == "sh /y/sessionward/install/status_line.sh /x/bin/sessionward"
    assert attribute(pristine, ("status-line",)) == (PRISTINE, "/x/bin/sessionward")
    for edited in (pristine + " 2>/dev/null", "bash /y/status_line.sh sessionward", "timeout 2 " + pristine):
        assert attribute(edited, ("status-line",))[0] == EDITED, edited
    assert launcher_of(pristine, ("status-line",)) == "/x/bin/sessionward"
    assert attribute(pristine + "; date", ("status-line",))[0] == MENTIONS
    assert attribute("sh /y/other.sh /x/bin/sessionward", ("status-line",))[0] == MENTIONS
    assert attribute(pristine, ("hook", "Stop"))[0] == MENTIONS  # never a hook's command
