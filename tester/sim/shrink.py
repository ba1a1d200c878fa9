"""Shrinking: reduce a failing plan to a small reproducer (fewer faults, fewer client ops).

A plan is deterministic, so "still fails" is a plain re-run. We keep a candidate when it
breaks the *same* property. Faults are removed by halves, then one at a time (ddmin-style);
then the op count is cut down; then network loss, duplication, reordering and log compaction
are switched off where the failure does not need them. Every attempt is bounded by
``budget`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tester.sim.simulator import Plan, SimResult, run_plan


def shrink(plan: Plan, prop: str, budget: int = 150,
           progress: Callable[[str], None] | None = None) -> tuple[Plan, SimResult, int]:
    """Returns the smallest failing plan found, its result and how many runs it took."""
    runs = 0
    best_plan = plan
    best = run_plan(plan)
    runs += 1

    def fails(p: Plan) -> SimResult | None:
        nonlocal runs
        runs += 1
        r = run_plan(p)
        return r if r.violation is not None and r.violation.prop == prop else None

    if best.violation is None or best.violation.prop != prop:
        return plan, best, runs  # not reproducible as given (should not happen: deterministic)

    # 1. faults: try dropping chunks, from halves down to single faults
    chunk = max(1, len(best_plan.faults) // 2)
    while chunk >= 1 and runs < budget:
        i, changed = 0, False
        while i < len(best_plan.faults) and runs < budget:
            faults = best_plan.faults[:i] + best_plan.faults[i + chunk:]
            r = fails(replace(best_plan, faults=faults))
            if r is not None:
                best_plan, best, changed = replace(best_plan, faults=faults), r, True
                if progress:
                    progress(f"shrink: {len(faults)} faults, {best_plan.ops} ops")
            else:
                i += chunk
        if not changed:
            chunk //= 2

    # 2. ops: fewer client operations (the failure usually happens early)
    lo = 1
    while runs < budget and best_plan.ops > lo:
        target = max(lo, best_plan.ops // 2) if best_plan.ops > 20 else best_plan.ops - 5
        if target < lo or target >= best_plan.ops:
            break
        r = fails(replace(best_plan, ops=target))
        if r is None:
            # try a gentler cut once before giving up
            gentler = (best_plan.ops + target) // 2
            if gentler >= best_plan.ops or gentler < lo:
                break
            r = fails(replace(best_plan, ops=gentler))
            if r is None:
                break
            target = gentler
        best_plan, best = replace(best_plan, ops=target), r
        if progress:
            progress(f"shrink: {len(best_plan.faults)} faults, {best_plan.ops} ops")
    # 3. a calmer network and no compaction, where the failure does not need them
    for change in ({"loss": 0.0}, {"dup": 0.0}, {"reorder": 0.0}, {"compact_every": 0}):
        if runs >= budget:
            break
        key, value = next(iter(change.items()))
        if getattr(best_plan, key) == value:
            continue
        r = fails(replace(best_plan, **change))
        if r is not None:
            best_plan, best = replace(best_plan, **change), r
    return best_plan, best, runs
