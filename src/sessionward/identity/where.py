"""Where a record's owner runs and how its liveness was established, as people and --json
read them. The phrases come from identity.process (where_it_runs, Liveness.reason); this
module only fits them to their places:

  owner_where(owner)    where_it_runs for an owner record as stored: "here", "on the host H",
                        "in container H", "in a sandbox (PID namespace N)", "on H"
  where_label(where)    the same in a table cell or a --json field: "here", "host H",
                        "container H", "sandbox N"
  liveness_json(v)      {"alive", "known", "how", "reason"}: the --json form of a Liveness
  liveness_note(v)      what a person is told beside a session: "" when its PID answered (the
                        common case, kept short), "alive by its life lock", or the unknown
                        verdict with its last sign of life
"""

from sessionward.identity.process import Liveness, where_it_runs

HERE = "here"
UNKNOWN_ADVICE = "never swept on age: once its owner is gone, clear it by hand"


def owner_where(owner: dict) -> str:
    return where_it_runs(owner.get("host"), owner.get("pidns"))


def where_label(where: str) -> str:
    """where_it_runs's phrase without its preposition: the short form of a table's WHERE."""
    if where.startswith("in a sandbox (PID namespace ") and where.endswith(")"):
        return "sandbox " + where[len("in a sandbox (PID namespace "):-1]
    if where.startswith("on the host"):
        return "host" + where[len("on the host"):]
    if where.startswith("in container "):
        return where[len("in "):]
    if where.startswith("on "):
        return "host " + where[len("on "):]  # another machine, whose PID namespace is like ours
    return where


def liveness_json(verdict: Liveness) -> dict:
    return {"alive": verdict.alive, "known": verdict.known, "how": verdict.how, "reason": verdict.reason}


def liveness_note(verdict: Liveness) -> str:
    if not verdict.known:
        return verdict.reason
    if verdict.how == "life lock":
        return "alive by its life lock" if verdict.alive else verdict.reason
    return ""
