"""doctor: check the install, the state directory and Claude Code; say how to fix each problem."""

from sessionward.cli.render import Output
from sessionward.doctor import FAIL, OK, reseed_shared_store, run_checks
from sessionward.errors import EXIT_CONFLICT, EXIT_OK

_LABEL = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}
_COLOR = {"ok": "32", "info": "2", "warn": "1;33", "fail": "1;31"}


def run_doctor(values: dict) -> Output:
    reseeded = reseed_shared_store() if values.get("reseed") else None
    checks = run_checks(values["scope"])
    failed = [c for c in checks if c.status == FAIL]
    data = {"checks": [c.to_json() for c in checks], "failed": len(failed)}
    if reseeded is not None:
        data["reseed"] = reseeded

    def lines(style):
        width = max(len(c.name) for c in checks)
        out = [_reseed_line(reseeded)] if reseeded is not None else []
        for check in checks:
            label = style.paint(_LABEL[check.status], _COLOR[check.status])
            out.append(f"{label}  {check.name:<{width}}  {check.detail}")
            if check.fix and check.status != OK:
                out.append(f"      {'':<{width}}  fix: {check.fix}")
        problems = [c for c in checks if c.status in ("warn", "fail")]
        out.append(f"{len(problems)} problem(s) found" if problems else "everything is in place")
        return out

    return Output("doctor", data, lines, EXIT_CONFLICT if failed else EXIT_OK)


def _reseed_line(done: dict) -> str:
    if not done["reseeded"]:
        return f"nothing to re-seed: the shared store did not lose its state (fences up to {done['floor']})"
    return (f"re-seeded the shared store: {done['why']}; every fence counter is now above {done['floor']}, "
            f"epoch {done['epoch']}: fenced writes are allowed again")
