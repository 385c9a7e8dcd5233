"""The ``curation`` command line.

``curation agreement FILE`` prints the agreement report (and ``--json OUT``
writes it); ``curation consensus FILE --method majority|dawid-skene --out OUT.csv``
writes consensus labels. Bad input exits with code 2 and the validation
message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from curation.aggregation import METHODS, consensus_frame, make_aggregator
from curation.io import DEFAULT_MAX_BYTES, FORMATS, load_annotations
from curation.report import COEFFICIENT_NAMES, JUDGES, AgreementReport, agreement_report

__all__ = ["build_parser", "main"]

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation", description="Annotation quality from the command line: agreement and consensus.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    agree = sub.add_parser("agreement", help="inter-annotator agreement report")
    _add_input_options(agree)
    agree.add_argument("--target", type=float, default=0.90, help="agreement target (default 0.90)")
    agree.add_argument("--judge-by", choices=JUDGES, default="auto",
                       help="coefficient the verdict uses (default: chosen from the data)")
    agree.add_argument("--consensus", choices=list(METHODS), default="majority")
    agree.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates (default 1000)")
    agree.add_argument("--seed", type=int, default=0)
    agree.add_argument("--top", type=int, default=10, help="most-disputed items to list")
    agree.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    cons = sub.add_parser("consensus", help="consensus label per item")
    _add_input_options(cons)
    cons.add_argument("--method", choices=list(METHODS), default="majority")
    cons.add_argument("--out", type=Path, required=True, metavar="OUT.csv")
    return parser


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--file-type", choices=["csv", "tsv", "jsonl", "json", "parquet"])
    p.add_argument("--map", action="append", default=[], metavar="FILE_COLUMN=NAME",
                   help="rename a column, e.g. --map worker=annotator_id (repeatable)")
    p.add_argument("--annotator-columns", metavar="A,B,...", help="wide format: annotator columns")
    p.add_argument("--labels", metavar="L1,L2,...", help="declared label set")
    p.add_argument("--encoding", help="text encoding (default: UTF-8, with or without BOM)")
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_BYTES / 2**20,
                   help="refuse files larger than this (default 200)")


def _load(args: argparse.Namespace) -> pd.DataFrame:
    mapping = {}
    for item in args.map:
        if "=" not in item:
            raise ValueError(f"--map {item!r} must look like FILE_COLUMN=NAME, e.g. worker=annotator_id.")
        src, dst = item.split("=", 1)
        mapping[src.strip()] = dst.strip()
    return load_annotations(
        args.file, format=args.format, columns=mapping or None, file_type=args.file_type,
        annotator_columns=_split(args.annotator_columns), label_set=_split(args.labels),
        encoding=args.encoding, max_bytes=int(args.max_mb * 2**20))


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _run_agreement(args: argparse.Namespace) -> int:
    df = _load(args)
    report = agreement_report(df, target=args.target, judge_by=args.judge_by,
                              consensus=args.consensus, n_boot=args.n_boot, seed=args.seed,
                              top_k=args.top)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _run_consensus(args: argparse.Namespace) -> int:
    df = _load(args)
    model = make_aggregator(args.method).fit(df)
    out = consensus_frame(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    n_ties = int((out["tie"] != "").sum())
    print(f"wrote {len(out)} consensus labels ({args.method}) to {args.out}"
          + (f"; {n_ties} ties left unresolved (label empty, 'tie' lists the tied labels)" if n_ties else ""))
    return 0


def format_report(report: AgreementReport) -> str:
    """The report as plain text for a terminal."""
    lines = [f"{report.n_items} items, {report.n_annotators} annotators, "
             f"{report.n_annotations} annotations; labels: {', '.join(report.labels)}", "",
             f"{'coefficient':<22}{'value':>8}   95% CI"]
    for key, value in report.coefficients.items():
        low, high = report.ci[key]
        mark = "  <- judged" if key == report.judged_by else ""
        lines.append(f"{COEFFICIENT_NAMES[key]:<22}{value:>8.3f}   [{low:.3f}, {high:.3f}]{mark}")
    lines += ["", "VERDICT: " + report.verdict(), f"  why this coefficient: {report.judged_reason}"]
    lines += [f"  note: {n}" for n in report.notes]
    lines += ["", "pairwise Cohen's kappa (shared items):"]
    lines += [f"  {r.a:>12} ~ {r.b:<12} kappa {r.kappa:6.3f}  n={r.n}"
              for r in report.pairwise.itertuples()][:45]
    lines += ["", "per class:", _indent(report.per_class.round(3).to_string())]
    lines += ["", "per annotator:", _indent(report.per_annotator.round(3).to_string())]
    shown = report.disagreements[["item_id", "votes", "agreement"]]
    lines += ["", "most disputed items:", _indent(shown.round(3).to_string(index=False))]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    runner = {"agreement": _run_agreement, "consensus": _run_consensus}[args.command]
    try:
        return runner(args)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
