"""Section 1 of bench/run.py (`--only api`): registry operations through the Python API
at 10, 100 and 1,000 sessions (the method is in run.py's docstring)."""

import json
import time
from pathlib import Path

from harness import interleave, make_store, median, p90, populate, render_table

SIZES = (10, 100, 1000)
REGISTRY_BUDGET_MS = 5.0  # "under a few milliseconds at 1,000 sessions"
LINEAR_SLACK = 1.5


OPERATIONS = ("register_session", "load_live_sessions", "find_conflicts")
COMPONENTS = ("store.load_sessions", "session_liveness x N", "json.loads (floor)")


def api_cases(store, size: int, owners: list, me, checkouts: list[str]) -> list:
    """(op, size, timed function, untimed undo): the operations and their main components."""
    from sessionward import registry

    counter = iter(range(10**9))
    last = {}

    def register():
        last["id"] = f"new-{next(counter)}"
        registry.register_session(checkouts[0], session_id=last["id"], owner=owners[0], store=store)

    def unregister():
        registry.unregister_sessions(session_id=last["id"], store=store)

    def liveness():  # what every operation pays per owner: one /proc read, as in a sweep
        seen: dict = {}
        for record in snapshot.values():
            registry.session_liveness(record, seen=seen)

    snapshot = store.load_sessions()
    raw = Path(store.registry_path).read_bytes()
    return [
        ("register_session", size, register, unregister),
        ("load_live_sessions", size, lambda: registry.load_live_sessions(store), None),
        ("find_conflicts", size, lambda: registry.find_conflicts(cwd=checkouts[0], owner=me, store=store), None),
        ("store.load_sessions", size, store.load_sessions, None),
        ("session_liveness x N", size, liveness, None),
        ("json.loads (floor)", size, lambda: json.loads(raw), None),
    ]


def verify_api_fixture(store, size: int, me, checkouts: list[str]) -> None:
    """The registry really holds `size` live sessions, each a conflict for `me`."""
    from sessionward import registry

    live, swept = registry.load_live_sessions(store)
    conflicts = registry.find_conflicts(cwd=checkouts[0], owner=me, store=store).conflicts
    if len(live) != size or swept or len(conflicts) != size:
        raise SystemExit(f"bench fixture broken at N={size}: {len(live)} live, {len(swept)} swept, {len(conflicts)} conflicts")


def time_api_case(case) -> float:
    _, _, operation, undo = case
    start = time.perf_counter()
    operation()
    elapsed = time.perf_counter() - start
    if undo is not None:
        undo()
    return elapsed * 1000.0


def run_api_section(root: Path, owners: list, me, checkouts: list[str], rounds: int) -> list[dict]:
    cases = []
    for size in SIZES:
        store = make_store(root, f"state{size}")
        populate(store, size, owners, checkouts)
        verify_api_fixture(store, size, me, checkouts)
        cases += api_cases(store, size, owners, me, checkouts)
    labelled = [(f"{op}@{size}",) + case for case in cases for op, size in [case[:2]]]
    for case in labelled:  # warm-up: first reads, page cache
        time_api_case(case[1:])
    samples = interleave(labelled, rounds, lambda case: time_api_case(case[1:]))
    return [
        {"op": op, "size": size, "median": median(samples[label]), "p90": p90(samples[label])}
        for label, op, size, _, _ in labelled
    ]


def api_budget(row: dict, by_key: dict) -> str:
    if row["size"] != max(SIZES) or row["op"] not in OPERATIONS:
        return "-"
    smaller = by_key[(row["op"], SIZES[-2])]
    problems = []
    if row["median"] > REGISTRY_BUDGET_MS:
        problems.append(f"> {REGISTRY_BUDGET_MS:g} ms")
    if row["median"] / row["size"] > LINEAR_SLACK * smaller["median"] / smaller["size"]:
        problems.append("superlinear")
    return "FAIL (" + ", ".join(problems) + ")" if problems else "PASS"


def api_rows(results: list[dict], ops: tuple) -> list[list[str]]:
    by_key = {(r["op"], r["size"]): r for r in results}
    rows = []
    for op in ops:
        for size in SIZES:
            r = by_key[(op, size)]
            smaller = by_key.get((op, size // 10))
            growth = f"{r['median'] / smaller['median']:.1f}" if smaller else "-"
            rows.append([
                op, str(size), f"{r['median']:.3f}", f"{r['p90']:.3f}",
                f"{1000 * r['median'] / size:.1f}", growth, api_budget(r, by_key),
            ])
    return rows


def api_tables(results: list[dict], markdown: bool) -> str:
    headers = ["operation", "sessions", "median ms", "p90 ms", "us/session", "x N/10", "budget"]
    title = (
        f"1. Registry operations, Python API (budget at {max(SIZES)} sessions: <= {REGISTRY_BUDGET_MS:g} ms "
        f"and linear; 'x N/10' = time / time at N/10, 10.0 when exactly linear)"
    )
    main = render_table(title, headers, api_rows(results, OPERATIONS), markdown)
    title = "1b. Where the time goes: components every operation above pays (no budget)"
    parts = render_table(title, headers[:-1], [row[:-1] for row in api_rows(results, COMPONENTS)], markdown)
    return main + "\n\n" + parts

