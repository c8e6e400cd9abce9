"""The markdown table bench/density.py prints: each scenario against issue 14's target."""

import json

TARGETS = {"idle": 80, "rolling": 600, "active": 12}  # MiB of PSS


def met(value: float, target: float) -> str:
    return "**yes**" if value <= target else "**no**"


def table(results: dict) -> str:
    rows = ["| scenario | measured | target | met? |", "| --- | --- | --- | --- |"]
    notes = []
    if "idle" in results:
        r = results["idle"]
        rows.append(f"| {r['packages']} packages mounted, all idle | tree PSS "
                    f"{r['tree_pss_mib']} MiB ({r['processes']} processes; runtime alone "
                    f"{r['runtime_pss_mib']} MiB) | ≤ {TARGETS['idle']} MiB | "
                    f"{met(r['tree_pss_mib'], TARGETS['idle'])} |")
    if "rolling" in results:
        r = results["rolling"]
        ok = r["calls_failed"] == 0 and r["tree_pss_mib_max"] <= TARGETS["rolling"]
        rows.append(
            f"| {r['packages']} packages, `--idle-timeout 5`, {r['working_set']} busy rotating, "
            f"{r['windows']} windows | {r['calls_ok']:,} calls ({r['calls_per_s']:,}/s), "
            f"**{r['calls_failed']} failed**; tree PSS max {r['tree_pss_mib_max']} MiB "
            f"(median {r['tree_pss_mib_median']}, runtime alone ≤ {r['runtime_pss_mib_max']}); "
            f"all idle {r['idle_tree_pss_mib']} MiB; first call of a window p50 "
            f"{r['first_call_ms_p50']} ms, max {r['first_call_ms_max']} ms | 0 failed, "
            f"≤ {TARGETS['rolling']} MiB | {'**yes**' if ok else '**no**'} |")
        notes.append(f"Rolling, the largest sample by depth below the runtime (processes, "
                     f"MiB): {json.dumps(r['largest_sample_by_depth'])}.")
    if "active" in results:
        r = results["active"]
        rows.append(f"| one active package, wrk -c32 ({r['calls_per_s']:,} calls/s, "
                    f"{r['non_2xx']} non-2xx) | worker {r['worker_pss_mib_max']} MiB; worker "
                    f"+ jail ({r['package_processes']} processes) "
                    f"{r['package_pss_mib_max']} MiB | ≤ {TARGETS['active']} MiB | "
                    f"worker {met(r['worker_pss_mib_max'], TARGETS['active'])}, with jail "
                    f"{met(r['package_pss_mib_max'], TARGETS['active'])} |")
        notes.append(f"The active package's processes: {'; '.join(r['package_breakdown'])}.")
    return "\n".join(rows + [""] + notes)
