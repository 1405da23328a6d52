"""The torture tier (issue 5): DESIGN.md's promises under abuse, with figures.

Every test here is marked `torture` and `slow` (so `-m "not slow"` and `-m "not torture"`
skip it; the full run, and so CI, runs it). Each part of the suite counts what it did in a
Tally and ends with tally.check(), which fails on any lost update, torn file, double holder
or traceback. At the end of the run pytest prints one summary line per part, summed over its
tests:

    crash consistency: operations 412, faults injected 96, lost updates 0, torn files 0, double holders 0, tracebacks 0; crash points 96

and, when SESSIONWARD_TORTURE_REPORT names a file, writes them there as JSON lines (how
docs/RELIABILITY.md gets its figures).
"""

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

import pytest

from helpers import skip_or_fail

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

# FakeClaude (a live process named `claude` that runs hooks as `sh -c` children, as Claude Code
# does) lives with the hook tests; loaded from there by path, so there is one of it.
_spec = importlib.util.spec_from_file_location(
    "_hook_fixtures", os.path.join(os.path.dirname(__file__), "..", "hooks", "conftest.py"))
_hook_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hook_fixtures)
FakeClaude = _hook_fixtures.FakeClaude


@pytest.fixture
def claude(tmp_path):
    """Factory: a FakeClaude (flavour 2.1.331: CLAUDE_PID set) to own hook sessions; hooks run
    as its children, as under Claude Code. All closed after the test."""
    bin_dir = tmp_path / "fake-claude-bin"
    bin_dir.mkdir()
    script = bin_dir / "fake_claude.py"
    script.write_text(_hook_fixtures.FAKE_CLAUDE_PROGRAM)
    (bin_dir / "claude").symlink_to(sys.executable)
    started = []

    def start():
        started.append(FakeClaude("2.1.331", str(bin_dir / "claude"), str(script)))
        return started[-1]

    yield start
    for one in started:
        one.close()


FAILURE_FIELDS = ("lost_updates", "torn_files", "double_holders", "tracebacks")
_TALLIES: list = []


class Tally:
    """What one test of one part did and found. Counters are plain attributes: add to them.

    operations       operations attempted (register, acquire, hook call, CLI call, ...)
    faults_injected  crashes, kills, full disks, clock jumps, hostile inputs... put in
    lost_updates     committed updates missing afterwards
    torn_files       state files that did not parse (or held a mix of two writes)
    double_holders   moments two processes held one lock
    tracebacks       Python tracebacks shown to a user, or logged as internal errors
    figures          extra facts for the summary line, e.g. {"crash points": 96, "p99 ms": 180.2}
    """

    def __init__(self, part: str) -> None:
        self.part = part
        self.operations = 0
        self.faults_injected = 0
        self.lost_updates = 0
        self.torn_files = 0
        self.double_holders = 0
        self.tracebacks = 0
        self.figures: dict = {}
        self.problems: list[str] = []

    def problem(self, field: str, detail: str) -> None:
        """Count one failure of kind `field` (one of FAILURE_FIELDS), with what was seen."""
        assert field in FAILURE_FIELDS, field
        setattr(self, field, getattr(self, field) + 1)
        self.problems.append(f"{field.replace('_', ' ')}: {detail}")

    def saw_output(self, what: str, text: str) -> None:
        """Count a traceback in `text` (a process's stdout/stderr) as a problem."""
        if "Traceback (most recent call last)" in (text or ""):
            self.problem("tracebacks", f"{what}: {text[-1500:]}")

    def line(self) -> str:
        return summary_line(self.part, vars(self))

    def record(self) -> None:
        """Put this tally in the summary without judging it (a negative control's findings)."""
        _TALLIES.append(self)

    def check(self) -> None:
        """Record this tally for the summary; fail on any loss, tear, double holder or traceback."""
        _TALLIES.append(self)
        assert self.operations > 0, f"{self.part}: no operations were counted"
        shown = self.problems[:20] + ([f"... and {len(self.problems) - 20} more"] if len(self.problems) > 20 else [])
        assert not any(getattr(self, f) for f in FAILURE_FIELDS), self.line() + "\n" + "\n".join(shown)


def summary_line(part: str, counts: dict) -> str:
    line = (f"{part}: operations {counts['operations']}, faults injected {counts['faults_injected']}, "
            f"lost updates {counts['lost_updates']}, torn files {counts['torn_files']}, "
            f"double holders {counts['double_holders']}, tracebacks {counts['tracebacks']}")
    if counts.get("figures"):
        line += "; " + ", ".join(f"{k} {v}" for k, v in counts["figures"].items())
    return line


def _summed() -> dict:
    parts: dict = {}
    for tally in _TALLIES:
        into = parts.setdefault(tally.part, {"operations": 0, "faults_injected": 0, "figures": {},
                                             **{f: 0 for f in FAILURE_FIELDS}})
        for field in ("operations", "faults_injected") + FAILURE_FIELDS:
            into[field] += getattr(tally, field)
        for key, value in tally.figures.items():  # numbers add up; anything else: the last seen
            old = into["figures"].get(key)
            into["figures"][key] = old + value if isinstance(value, int) and isinstance(old, int) else value
    return parts


@pytest.fixture
def tally(request):
    """tally("storms") -> a Tally for this test; call .check() at its end."""
    return Tally


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.torture)
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    parts = _summed()
    if not parts:
        return
    terminalreporter.section("sessionward torture summary")
    for part, counts in parts.items():
        terminalreporter.write_line(summary_line(part, counts))
    report = os.environ.get("SESSIONWARD_TORTURE_REPORT")
    if report:
        machine = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
                   "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
        with open(report, "w") as out:
            out.write(json.dumps({"machine": machine}) + "\n")
            for part, counts in parts.items():
                out.write(json.dumps({"part": part, **counts, "line": summary_line(part, counts)}) + "\n")


@pytest.fixture
def faketime(tmp_path):
    """set(offset) moves the wall clock of every process started with `env` (libfaketime:
    Debian's faketime, installed by scripts/test), e.g. set("+3y"); the offset is re-read
    from a file on every call, the monotonic clock left real, as after a real `date -s`.
    Not for processes that sleep (libfaketime 0.9.10 breaks time.sleep there: see
    test_environment_faults.py's wall_clock)."""
    if not os.path.exists(LIBFAKETIME):
        skip_or_fail(f"libfaketime missing ({LIBFAKETIME}): apt-get install faketime (scripts/test does)")
    offset_file = tmp_path / "faketime-offset"
    offset_file.write_text("+0\n")
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(offset_file), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    class Clock:
        def set(self, offset: str) -> None:
            tmp = offset_file.with_suffix(".new")
            tmp.write_text(offset + "\n")
            os.replace(tmp, offset_file)

    clock = Clock()
    clock.env = env
    probe = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=10)
    clock.set("+1d")
    probe2 = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=10)
    clock.set("+0")
    if probe.returncode or probe2.returncode or not 80000 < float(probe2.stdout) - float(probe.stdout) < 92000:
        skip_or_fail(f"libfaketime does not move the clock here: {probe.stdout!r} {probe2.stdout!r} {probe2.stderr!r}")
    return clock
