"""same_process: the one rule for "do these two owner records name one process", used by the
registry (is this my session), locks (my hold, my place in the queue), claims (my claim, my
session's end)."""

import pytest

from sessionward import claims
from sessionward.identity import same_process
from sessionward.identity.process import BOOT_ID_UNKNOWN

ME = {"pid": 4242, "start_time": 777, "host": "box", "pidns": 4026531836, "boot_id": "b1"}


@pytest.mark.parametrize("other, same", [
    (dict(ME), True),
    ({"pid": 4242}, True),  # a record written before start times, hosts and namespaces were kept
    (dict(ME, start_time=None, host=None, pidns=None, boot_id=None), True),
    (dict(ME, boot_id=BOOT_ID_UNKNOWN), True),  # an unreadable boot id never means another boot
    (dict(ME, pid=4243), False),
    (dict(ME, pid="4242"), False),
    (dict(ME, start_time=778), False),  # the PID was reused
    (dict(ME, host="other-box"), False),
    (dict(ME, pidns=4026532000), False),  # the same number in another PID namespace
    (dict(ME, boot_id="b2"), False),  # before a reboot
])
def test_same_process_rule(other, same):
    assert same_process(ME, other) is same
    assert same_process(other, ME) is same


def test_a_claim_recorded_in_another_pid_namespace_or_boot_is_not_mine(owners, tmp_path):
    """Same PID, start time and host, but another PID namespace or boot: another process,
    whose claim guards the file against this one (it was taken as this owner's own)."""
    owner = owners()
    for forged in (dict(owner.to_record(), pidns=(owner.pidns or 0) + 1),
                   dict(owner.to_record(), boot_id="another-boot")):
        claim = {"owner": forged, "path": str(tmp_path / "f"), "at": 1.0, "write": True}
        assert not claims.is_mine(claim, owner)
    assert claims.is_mine({"owner": owner.to_record()}, owner)
