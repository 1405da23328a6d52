"""The git guard scored on the labelled corpus (corpus.py, each label checked against real
git by test_corpus_realgit.py): how many destructive commands and sweeps it asks about while
another live session shares the worktree (having edited its files through Claude Code, so
claims name them), how many harmless ones it asks about needlessly, and that it asks about
nothing when this session is the only one there. Prints the table
(`pytest -s` or the captured output of a failure); docs/GIT_GUARD.md records it."""

import os

import pytest

from sessionward import registry
from sessionward.claims import record_claim
from sessionward.identity import describe_checkout
from sessionward.config import load_config
from sessionward.guards import check_git_command

from gitguard.corpus import CORPUS
from gitguard.realgit import THEIRS, build_scenario

NOW = 1_800_000_000.0
# The targets of issue 12. The reader before issue 12 scored destructive 131/180 (72.8%), sweeps
# 7/74 (9.5%), false alarms 18/181 (9.9%), nothing with one live session (on the first 435
# commands); the reader of issue 12 191/193, 82/82, 2/205, nothing (docs/GIT_GUARD.md).
TARGETS = {"destructive": 0.97, "sweep": 0.90, "harmless": 0.03}


def asked(commands, cwd_of, me) -> list:
    config = load_config({})
    return [c for c in commands if check_git_command(c[0], cwd_of(c), me, config, now=NOW).decision]


def table(rows) -> str:
    lines = [f"{'':34} {'asked':>7} {'of':>5} {'rate':>7}"]
    for name, hit, total in rows:
        lines.append(f"{name:34} {hit:>7} {total:>5} {hit / total if total else 0:>7.1%}")
    return "\n".join(lines)


@pytest.fixture
def work(tmp_path):
    return build_scenario(str(tmp_path / "scratch"), "staged")


def test_the_git_guard_scores_on_the_corpus(work, owners, capsys):
    me, other = owners(), owners()
    registry.register_session(work, owner=me, session_id="aaaaaaaa-mine", now=NOW - 90)

    def cwd_of(entry):
        return os.path.join(work, entry[2]) if entry[2] else work

    alone = asked(CORPUS, cwd_of, me)
    registry.register_session(work, owner=other, session_id="bbbbbbbb-other", now=NOW - 90)
    for path in THEIRS:  # its edits, as its PostToolUse hook records them
        full = os.path.join(work, path)
        record_claim(full, owner=other, session_id="bbbbbbbb-other", tool="Write",
                     checkout=describe_checkout(os.path.dirname(full)), now=NOW - 60)
    shared = asked(CORPUS, cwd_of, me)
    by_label = {label: [c for c in CORPUS if c[1] == label] for label in TARGETS}
    hits = {label: [c for c in shared if c[1] == label] for label in TARGETS}
    rows = [
        ("destructive asked (recall)", len(hits["destructive"]), len(by_label["destructive"])),
        ("sweeps asked (recall)", len(hits["sweep"]), len(by_label["sweep"])),
        ("harmless asked (false alarms)", len(hits["harmless"]), len(by_label["harmless"])),
        ("anything asked, one live session", len(alone), len(CORPUS)),
    ]
    missed = [c[0] for label in ("destructive", "sweep") for c in by_label[label] if c not in hits[label]]
    with capsys.disabled():
        print("\n" + table(rows))
        for command in missed:
            print(f"  missed: {command!r}")
        for entry in hits["harmless"]:
            print(f"  false alarm: {entry[0]!r}")
    assert not alone, alone
    assert len(hits["destructive"]) >= TARGETS["destructive"] * len(by_label["destructive"])
    assert len(hits["sweep"]) >= TARGETS["sweep"] * len(by_label["sweep"])
    assert len(hits["harmless"]) <= TARGETS["harmless"] * len(by_label["harmless"])
