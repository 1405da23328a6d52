"""install: place sessionward's files (today: the origin's paths, with --seed-paths)."""

from sessionward.cli.render import Output
from sessionward.errors import UsageError
from sessionward.install.seed_paths import apply_actions, plan_seed_files, seed_files

_VERBS = {
    "create": ("would create", "created"),
    "update": ("would update", "updated"),
    "unchanged": ("unchanged", "unchanged"),
    "replace": ("would replace", "replaced"),
}


def run_install(values: dict) -> Output:
    if not values["seed_paths"]:
        raise UsageError(
            "install: nothing selected", "use 'sessionward install --seed-paths' (Claude Code hooks come in a later release)"
        )
    actions = plan_seed_files(seed_files())
    if not values["dry_run"]:
        apply_actions(actions)

    def lines(style):
        out = []
        for action in actions:
            verb = _VERBS[action.kind][0 if values["dry_run"] else 1]
            line = f"{verb} {style.path(action.file.path)}"
            if action.backup:
                line += f" (not written by sessionward; kept as {style.path(action.backup)})"
            out.append(line)
        return out

    return Output("install", {"dry_run": bool(values["dry_run"]), "actions": [a.to_json() for a in actions]}, lines)
