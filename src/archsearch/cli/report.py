"""``report``: a run directory as one self-contained HTML page."""

from __future__ import annotations


def cmd_report(args) -> int:
    from archsearch.report.html import write_report

    path = write_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="a run directory as one self-contained HTML page",
                       description="Write one HTML file of a search or training run (finished, running or "
                                   "stopped): result, cell, configuration, per-epoch table and every plot, "
                                   "embedded; it needs no network and no other file.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (archsearch search/train --out)")
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the page (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)
