"""doctor: check the install, the state directory and Claude Code; say how to fix each problem."""

from sessionward.cli.render import Output
from sessionward.doctor import FAIL, OK, run_checks
from sessionward.errors import EXIT_CONFLICT, EXIT_OK

_LABEL = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}
_COLOR = {"ok": "32", "info": "2", "warn": "1;33", "fail": "1;31"}


def run_doctor(values: dict) -> Output:
    checks = run_checks(values["scope"])
    failed = [c for c in checks if c.status == FAIL]
    data = {"checks": [c.to_json() for c in checks], "failed": len(failed)}

    def lines(style):
        width = max(len(c.name) for c in checks)
        out = []
        for check in checks:
            label = style.paint(_LABEL[check.status], _COLOR[check.status])
            out.append(f"{label}  {check.name:<{width}}  {check.detail}")
            if check.fix and check.status != OK:
                out.append(f"      {'':<{width}}  fix: {check.fix}")
        problems = [c for c in checks if c.status in ("warn", "fail")]
        out.append(f"{len(problems)} problem(s) found" if problems else "everything is in place")
        return out

    return Output("doctor", data, lines, EXIT_CONFLICT if failed else EXIT_OK)
