"""The git guard scored on the labelled corpus (corpus.py, each label checked against real
git by test_corpus_realgit.py): how many destructive commands and sweeps it asks about while
another live session shares the worktree (having edited its files through Claude Code, so
claims name them), how many harmless ones it asks about needlessly, and that it asks about
nothing when this session is the only one there. Prints the table
(`pytest -s` or the captured output of a failure); docs/GIT_GUARD.md records it."""

import os
import time

import pytest

from sessionward import registry
from sessionward.claims import record_claim
from sessionward.config import load_config
from sessionward.guards import check_git_command
from sessionward.identity import describe_checkout

from gitguard.corpus import CORPUS
from gitguard.realgit import MINE, SCENARIOS, THEIRS, build_scenario

# The targets of issue 12. The reader before issue 12 scored destructive 131/180 (72.8%), sweeps
# 7/74 (9.5%), false alarms 18/181 (9.9%), nothing with one live session (on the first 435
# commands); docs/GIT_GUARD.md has the scores now.
TARGETS = {"destructive": 0.97, "sweep": 0.90, "harmless": 0.03}


def table(rows) -> str:
    lines = [f"{'':34} {'asked':>7} {'of':>5} {'rate':>7}"]
    for name, hit, total in rows:
        lines.append(f"{name:34} {hit:>7} {total:>5} {hit / total if total else 0:>7.1%}")
    return "\n".join(lines)


def score(tmp_path, owners, their_edits: str):
    """(rows, missed, false alarms): a command counts as asked when the guard asks in any of the
    three states of the second session's work (as its label is the worst effect over them).
    This session edited its own files through Claude Code (its claims name them); the second
    session edited its files through Claude Code ("claims") or through Bash ("bash": no claims,
    the files changed after it started)."""
    config = load_config({})
    started = time.time() - 90
    works, asked_alone, asked_shared = {}, set(), set()
    for scenario in SCENARIOS:
        me, other = owners(), owners()
        work = build_scenario(str(tmp_path / scenario), scenario)
        registry.register_session(work, owner=me, session_id=f"aaaaaaaa-mine-{scenario}", now=started)
        for path in MINE:
            full = os.path.join(work, path)
            record_claim(full, owner=me, session_id=f"aaaaaaaa-mine-{scenario}", tool="Write",
                         checkout=describe_checkout(os.path.dirname(full)), now=started + 20)
        works[scenario] = (work, me, other)
    now = time.time()
    for work, me, _other in works.values():
        asked_alone |= _asked(CORPUS, work, me, config, now)
    for scenario, (work, _me, other) in works.items():
        registry.register_session(work, owner=other, session_id=f"bbbbbbbb-other-{scenario}", now=started)
        for path in THEIRS if their_edits == "claims" else ():
            full = os.path.join(work, path)
            record_claim(full, owner=other, session_id=f"bbbbbbbb-other-{scenario}", tool="Write",
                         checkout=describe_checkout(os.path.dirname(full)), now=started + 30)
    for work, me, _other in works.values():
        asked_shared |= _asked(CORPUS, work, me, config, now)
    by_label = {label: [c for c in CORPUS if c[1] == label] for label in TARGETS}
    hits = {label: [c for c in by_label[label] if c[0] in asked_shared] for label in TARGETS}
    rows = [
        ("destructive asked (recall)", len(hits["destructive"]), len(by_label["destructive"])),
        ("sweeps asked (recall)", len(hits["sweep"]), len(by_label["sweep"])),
        ("harmless asked (false alarms)", len(hits["harmless"]), len(by_label["harmless"])),
        ("anything asked, one live session", len(asked_alone), len(CORPUS)),
    ]
    missed = [c[0] for label in ("destructive", "sweep") for c in by_label[label] if c not in hits[label]]
    return rows, missed, [c[0] for c in hits["harmless"]]


def _asked(commands, work, me, config, now) -> set:
    return {c[0] for c in commands
            if check_git_command(c[0], os.path.join(work, c[2]) if c[2] else work, me, config, now=now).decision}


@pytest.mark.parametrize("their_edits", ["claims", "bash"])
def test_the_git_guard_scores_on_the_corpus(tmp_path, owners, their_edits):
    rows, missed, false_alarms = score(tmp_path, owners, their_edits)
    print(f"\nthe other session's edits: {their_edits}\n" + table(rows))
    for command in missed:
        print(f"  missed: {command!r}")
    for command in false_alarms:
        print(f"  false alarm: {command!r}")
    (_, destructive, n_destructive), (_, sweeps, n_sweeps), (_, harmless, n_harmless), (_, alone, _) = rows
    assert alone == 0
    assert destructive >= TARGETS["destructive"] * n_destructive
    assert sweeps >= TARGETS["sweep"] * n_sweeps
    assert harmless <= TARGETS["harmless"] * n_harmless
