"""Project, worktree and branch from git's files: worktrees of one repository are one project."""

import subprocess

from sessionward.identity import describe_checkout

from helpers import git, make_git_repo


def test_main_worktree(tmp_path):
    repo = make_git_repo(tmp_path / "webapp")
    (repo / "src" / "deep").mkdir(parents=True)
    checkout = describe_checkout(str(repo / "src" / "deep"))
    assert checkout.worktree == str(repo)
    assert checkout.project == "webapp"
    assert checkout.project_key == "git:" + str(repo / ".git")
    assert checkout.branch == "main"
    assert checkout.in_git


def test_linked_worktree_is_the_same_project_with_its_own_worktree(tmp_path):
    repo = make_git_repo(tmp_path / "webapp")
    linked = tmp_path / "elsewhere" / "wt-feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    main, other = describe_checkout(str(repo)), describe_checkout(str(linked))
    assert other.project == main.project == "webapp"
    assert other.project_key == main.project_key
    assert other.worktree == str(linked) != main.worktree
    assert other.branch == "feature"
    # and it agrees with git itself
    common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            cwd=linked, capture_output=True, text=True, check=True).stdout.strip()
    assert other.project_key == "git:" + common


def test_detached_head(tmp_path):
    repo = make_git_repo(tmp_path / "r")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    git(repo, "checkout", "-q", "--detach")
    assert describe_checkout(str(repo)).branch == f"(detached {sha[:7]})"


def test_outside_git_the_directory_is_project_and_worktree(tmp_path):
    plain = tmp_path / "notes"
    plain.mkdir()
    checkout = describe_checkout(str(plain))
    assert (checkout.project, checkout.worktree, checkout.branch) == ("notes", str(plain), None)
    assert checkout.project_key == "dir:" + str(plain)
    assert not checkout.in_git


def test_symlinked_path_resolves_to_the_same_worktree(tmp_path):
    repo = make_git_repo(tmp_path / "real")
    (tmp_path / "alias").symlink_to(repo)
    assert describe_checkout(str(tmp_path / "alias")).worktree == str(repo)


def test_broken_dot_git_file_is_not_a_checkout(tmp_path):
    d = tmp_path / "odd"
    d.mkdir()
    (d / ".git").write_text("not a gitdir line\n")
    assert describe_checkout(str(d)).in_git is False
