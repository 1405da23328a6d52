"""The directories install made, removed by uninstall once nothing is left in them.

  plan_dir_removal(candidates, leaving) -> [DirAction]
      candidates: directories install made (the manifest), plus the drafts directory and its
      parent, sessionward's own by name. leaving: the paths this uninstall removes. Deepest
      first, each existing candidate is "remove" when all it holds is leaving (or a directory
      planned for removal), else "keep" with why. kept_files: the files kept with a line of
      their own; a directory kept only for them (or for a kept directory) is "keep" with the
      why "holds what is kept above", which the report leaves out.
  apply_dir_actions(actions)
      rmdir each "remove"; one that filled meanwhile becomes "keep" (rmdir never removes
      anything but an empty directory, so a file written meanwhile is never lost).
"""

import errno
import os

from sessionward import drafts, paths
from sessionward.errors import StateUnwritable

HOLDS_KEPT = "holds only what is kept above"


class DirAction:
    """remove or keep (with `why`) one directory; create or unchanged for install's report."""

    __slots__ = ("path", "kind", "why")

    def __init__(self, path: str, kind: str, why: str = "") -> None:
        self.path = path
        self.kind = kind
        self.why = why

    def to_json(self) -> dict:
        return {"what": "dir", "path": self.path, "action": self.kind, "why": self.why}


def drafts_dirs() -> list[str]:
    """The drafts directory and its parent ($XDG_STATE_HOME/sessionward), outermost first."""
    directory = paths.drafts_dir()
    return [os.path.dirname(directory), directory]


def plan_dir_removal(candidates: list[str], leaving: set[str], kept_files: set[str] | frozenset[str] = frozenset()) -> list[DirAction]:
    leaving = set(leaving)
    kept = list(kept_files)  # reported on their own lines: a directory kept for them alone says nothing more
    actions = []
    for directory in sorted(set(candidates), key=lambda d: (-d.count(os.sep), d)):
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        except OSError as exc:
            actions.append(DirAction(directory, "keep", f"cannot read it ({exc.strerror})"))
            kept.append(directory)
            continue
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        staying = [n for n in names if os.path.join(directory, n) not in leaving]
        unexplained = [n for n in staying if os.path.join(directory, n) not in kept]
        if not staying:
            actions.append(DirAction(directory, "remove"))
            leaving.add(directory)
        elif unexplained:
            actions.append(DirAction(directory, "keep", _why_kept(directory, unexplained)))
            kept.append(directory)
        else:
            actions.append(DirAction(directory, "keep", HOLDS_KEPT))
            kept.append(directory)
    return actions


def _why_kept(directory: str, staying: list[str]) -> str:
    if directory == paths.drafts_dir():
        n = len(drafts.leftover_drafts())
        return f"holds {n} draft{'s' if n != 1 else ''} an /end did not finish (sessionward doctor lists them)"
    return "not empty: " + ", ".join(sorted(staying)[:3]) + (" ..." if len(staying) > 3 else "")


def apply_dir_actions(actions: list[DirAction]) -> None:
    for action in actions:
        if action.kind != "remove":
            continue
        try:
            os.rmdir(action.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise StateUnwritable(action.path, exc) from None
            action.kind, action.why = "keep", "not empty: something was put there meanwhile"
