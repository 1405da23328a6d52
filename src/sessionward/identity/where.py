"""Where a record's owner runs and how its liveness was established, as people and --json
read them. The phrases come from identity.process (where_it_runs, Liveness.reason); this
module only fits them to their places:

  owner_where(owner)    where_it_runs for an owner record as stored: "here", "on the host H",
                        "in container H", "in a sandbox (PID namespace N)", "on H"
  where_label(owner)    the same, short, in a table cell or a --json field: "here",
                        "host H", "container H", "sandbox N"
  liveness_json(v)      {"alive", "known", "how", "reason"}: the --json form of a Liveness
  liveness_note(v)      what a person is told beside a session: "" when its PID answered (the
                        common case, kept short), "alive by its life lock" (or "by its lease on the shared store"), or the unknown
                        verdict with its last sign of life
"""

from sessionward.identity.process import Liveness, on_another_kernel, this_host, where_it_runs, where_kind

HERE = "here"
UNKNOWN_ADVICE = "never swept on age: once its owner is gone, clear it by hand"


def owner_where(owner: dict) -> str:
    if _on_another_kernel(owner):
        return f"on {owner.get('host') or '?'}"
    return where_it_runs(owner.get("host"), owner.get("pidns"))


def _on_another_kernel(owner: dict) -> bool:
    """Another known boot id and another hostname: another machine or VM (the shared store's
    sessions), whatever its PID namespace looks like from here."""
    return on_another_kernel(owner) and owner.get("host") not in (None, this_host().hostname)


def where_label(owner: dict | None) -> str:
    """Where an owner record's process runs, short, for a table cell or a --json field:
    "here", "host H", "container H", "sandbox N" (identity.process.where_kind). None (a lock
    file alone, judged by its PID here): "here"."""
    if not isinstance(owner, dict):
        return HERE
    if _on_another_kernel(owner):
        return f"host {owner.get('host')}"
    kind, name = where_kind(owner.get("host"), owner.get("pidns"))
    if kind == "here":
        return HERE
    if kind == "machine":
        return f"host {name}"  # another machine, whose PID namespace is like ours
    return f"{kind} {name}" if name else kind


def liveness_json(verdict: Liveness) -> dict:
    return {"alive": verdict.alive, "known": verdict.known, "how": verdict.how, "reason": verdict.reason}


def liveness_note(verdict: Liveness) -> str:
    if not verdict.known:
        return verdict.reason
    if verdict.how == "life lock":
        return "alive by its life lock" if verdict.alive else verdict.reason
    if verdict.how == "lease":
        return "alive by its lease on the shared store" if verdict.alive else verdict.reason
    return ""
