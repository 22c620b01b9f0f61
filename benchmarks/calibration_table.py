"""The calibration of a scenario as a distribution over seeds, from a finished `l2sim sweep`.

    l2sim sweep paradex-2026 --seeds 20 --out sweeps/paradex
    python benchmarks/calibration_table.py sweeps/paradex [--markdown]

One row per seed (in the sweep's order): liquidations before the glitch (the market's own,
if any), accounts liquidated in the cascade (inside the rolled-back window: those the
restore gave equity back to), what the restore gave back (dollars), liquidations during the reopening,
compensation paid (accounts, dollars) and whether every check held; then the median and
the range of each column. Reads `DIR/results.csv` for the order and `DIR/runs/*.json` for
the reports (or only the finished reports, by seed, while the sweep still runs), so it
needs no chain and runs in a second.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

USD = 10**18
COLUMNS = ("liquidations before the glitch", "cascade accounts", "restore gave back $", "reopening liquidations",
           "compensated accounts", "compensation $", "checks")


def compute_row(report: dict) -> dict:
    """The calibration numbers of one report."""
    returned = (report.get("restore") or {}).get("returned") or {"accounts": 0, "total": 0}
    first_bad = report["incident"]["first_bad_height"] or 10**9
    return {
        "liquidations before the glitch": sum(p["liquidations"] for p in report.get("series", ())
                                              if p["fork"] == 0 and p["height"] < first_bad),
        # the accounts liquidated inside the rolled-back window: those the restore gave equity back to
        "cascade accounts": returned["accounts"],
        "restore gave back $": round(returned["total"] / USD),
        "reopening liquidations": (report.get("reopening") or {}).get("liquidations", 0),
        "compensated accounts": report["compensation"]["accounts"],
        "compensation $": round(report["compensation"]["total"] / USD),
        "checks": "held" if all(c["ok"] for c in report["checks"].values()) else "FAILED",
    }


def read_sweep(folder: Path) -> list[tuple[int, dict | None]]:
    """(seed, report or None when the run did not finish) in the order of results.csv."""
    reports = {}
    for path in (folder / "runs").glob("*.json"):
        saved = json.loads(path.read_text())
        reports[saved["seed"]] = saved["report"]
    if not (folder / "results.csv").is_file():  # a sweep still running: what has finished, by seed
        return sorted(reports.items())
    with open(folder / "results.csv", newline="") as stream:
        return [(int(row["seed"]), reports.get(int(row["seed"]))) for row in csv.DictReader(stream)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the --out folder of a finished l2sim sweep")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    rows = [(seed, compute_row(report) if report else None) for seed, report in read_sweep(args.folder)]
    done = [row for _, row in rows if row is not None]
    if args.markdown:
        print("| seed | " + " | ".join(COLUMNS) + " |")
        print("|---:|" + "---:|" * (len(COLUMNS) - 1) + "---|")
    for seed, row in rows:
        values = [f"{row[c]:,}" if isinstance(row[c], int) else row[c] for c in COLUMNS] if row else ["did not run"]
        print(f"| {seed} | " + " | ".join(values) + " |" if args.markdown else f"{seed:>20}  " + "  ".join(values))
    numeric = [c for c in COLUMNS if c != "checks"]
    for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
        values = [f"{pick(row[c] for row in done):,.0f}" for c in numeric] if done else []
        print(f"| {name} | " + " | ".join(values) + " | |" if args.markdown else f"{name:>20}  " + "  ".join(values))
    failed = sum(row["checks"] != "held" for row in done) + sum(row is None for _, row in rows)
    print(f"{len(done)} of {len(rows)} runs finished; {failed} failed or did not run", file=sys.stderr)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
