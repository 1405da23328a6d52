"""Every label in the git-guard corpus agrees with what real git does to a second session
sharing the worktree (realgit.py: the command runs in a copy of a scratch repository with
that session's work staged, unstaged, committed and stashed; the worst effect counts)."""

import collections

import pytest

from gitguard.corpus import CORPUS
from gitguard.realgit import RealGit

pytestmark = pytest.mark.slow


def test_the_corpus_is_large_and_covers_every_label():
    labels = collections.Counter(label for _command, label, _subdir in CORPUS)
    assert len(CORPUS) >= 300
    assert len({command for command, _label, _subdir in CORPUS}) == len(CORPUS), "a command is listed twice"
    assert min(labels["destructive"], labels["sweep"], labels["harmless"]) >= 60, labels


@pytest.fixture(scope="module")
def real_git():
    harness = RealGit()
    yield harness
    try:
        assert harness.templates_changed() == [], "a run reached outside its copy of the scratch repository"
    finally:
        harness.close()


def test_a_push_reaches_no_later_run(real_git):
    # a force push once moved the templates' shared bare remote back, and every later
    # `git pull --rebase` became a no-op (a corpus case failed only when run after the push)
    real_git.run("git push --force-with-lease origin main")
    assert real_git.run("git pull --rebase")[0] == "destructive"
    assert real_git.templates_changed() == []


@pytest.mark.parametrize(("command", "label", "subdir"), CORPUS, ids=[f"{i}" for i in range(len(CORPUS))])
def test_the_label_is_what_real_git_does(real_git, command, label, subdir):
    found, why = real_git.run(command, subdir)
    assert found == label, f"{command!r} (from {subdir or 'the top'}): labelled {label}, real git: {found} ({why})"
