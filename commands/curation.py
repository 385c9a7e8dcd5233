"""The ``curation`` command line.

``curation agreement FILE`` prints the agreement report (and ``--json OUT``
writes it); ``curation consensus FILE --method majority|dawid-skene --out OUT.csv``
writes consensus labels; ``curation flag``, ``curation export`` and
``curation augment FILE --method ... --out OUT.csv`` flag, export and augment. Bad input exits with code 2 and the validation
message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from curation.messages import suggest
from curation.aggregation import METHODS, consensus_frame, make_aggregator
from curation.flags import MODEL_SIGNALS, flag_items, read_model_probs
from curation.guidelines import load_guideline
from curation.languages import model_warning
from curation.io import (DEFAULT_MAX_BYTES, DEFAULT_MAX_TEXT_CHARS, FORMATS, LIMITS, declared_labels,
                         load_annotations, parse_limit)
from curation.report import (
    COEFFICIENT_NAMES,
    JUDGES,
    MIN_ITEMS,
    MIN_OVERLAP,
    TOP_ANNOTATORS,
    AgreementReport,
    agreement_report,
)
from actions import export as export_actions, projects, require
from actions.projects import NoProjectError
from curation.export_history import ITEMS_FILE, diff_exports, export_versions, write_manifest
from curation.store import redact_url
from curation.workspace import export_curated

__all__ = ["build_parser", "flags_in_priority_order", "format_report", "main"]

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation", description="Annotation quality from the command line: agreement, consensus, "
                                     "flags and export.")
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
    agree.add_argument("--annotators", type=_positive_int, default=TOP_ANNOTATORS, metavar="N",
                       help="annotators listed (those with most labels) and whose pairs are "
                            f"listed (default {TOP_ANNOTATORS}; the rest are counted in 'N more' "
                            "lines)")
    agree.add_argument("--min-overlap", type=_positive_int, default=MIN_OVERLAP, metavar="N",
                       help=f"a pair's kappa counts when they share N items or more "
                            f"(default {MIN_OVERLAP})")
    agree.add_argument("--min-items", type=_positive_int, default=MIN_ITEMS, metavar="N",
                       help=f"an annotator is named as lowest or outlier with N labels or more "
                            f"(default {MIN_ITEMS})")
    agree.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    flag = sub.add_parser("flag", help="flag items that need review, in priority order")
    _add_input_options(flag)
    flag.add_argument("--json", type=Path, metavar="OUT", help="write the flags as a JSON list")
    _add_flagging_options(flag, no_model="skip embeddings: only vote-based flaggers and exact "
                                         "near-duplicates")
    flag.add_argument("--top", type=int, default=20, help="queue rows to print")
    ev = sub.add_parser("evaluate-flags", help="how well the review order finds wrong labels, "
                        "next to random, vote share, Dawid-Skene, cleanlab and CROWDLAB")
    _add_input_options(ev)
    ev.add_argument("--truth", type=Path, metavar="TRUTH",
                    help="item_id + true label (column label, gold, truth or true_label); "
                         "default: the file's own gold column")
    ev.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    _add_flagging_options(ev, no_model="skip embeddings (no cleanlab or CROWDLAB baselines then)")
    export = sub.add_parser("export", help="stratified, leak-free train/validation/test splits + data card")
    _add_input_options(export)
    export.add_argument("--out", type=Path, required=True, metavar="DIR")
    export.add_argument("--project", help="apply this project's review decisions (path or URL)")
    export.add_argument("--test-size", type=float, default=0.15)
    export.add_argument("--val-size", type=float, default=0.15)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--formats", default="csv",
                        help="comma list of csv, jsonl, parquet, hf (a Hugging Face DatasetDict "
                             "saved with save_to_disk in DIR/hf, label a ClassLabel)")
    export.add_argument("--include-ambiguous", action="store_true",
                        help="keep items a reviewer marked ambiguous (left out by default)")
    export.add_argument("--excel-safe", action="store_true",
                        help="CSV: prefix cells that begin with = + - @ (spreadsheet formulas) "
                             "with ' (default: exact text; the data card counts them either way)")
    _add_actor(export, "who exports (team projects: a lead; default $CURATION_USER)")
    history = sub.add_parser("exports", help="list the versioned exports under a folder (the "
                             "app's: $CURATION_HOME/exports/<project>), or compare two exports")
    history.add_argument("root", type=Path, metavar="DIR",
                         help="a project's exports folder (holding v0001, v0002, ...)")
    history.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"),
                         help="two versions (v0001 or 1) or export folders: items added, removed, "
                              "relabelled and moved")
    history.add_argument("--json", type=Path, metavar="OUT", help="also write the diff as JSON")
    members = sub.add_parser("members", help="team mode: list, add or remove a project's members")
    members.add_argument("project", metavar="PROJECT", help="project path or SQLAlchemy URL")
    members.add_argument("--add", metavar="NAME", help="add a member or change their role")
    members.add_argument("--role", choices=["annotator", "lead"], default="annotator")
    members.add_argument("--remove", metavar="NAME", help="remove a member")
    _add_actor(members, "who does it (a lead; default $CURATION_USER; the first lead may add "
                        "themselves)")
    mig = sub.add_parser("migrate", help="show a project's schema revision and upgrade it (or take "
                         "it back with --to, for an older curation)")
    mig.add_argument("project", metavar="PROJECT", help="project path or SQLAlchemy URL")
    mig.add_argument("--check", action="store_true",
                     help="only show where the schema stands; exit 1 when an upgrade is pending")
    mig.add_argument("--to", metavar="REVISION",
                     help="take the schema back to this revision (0001: schema version 1); a "
                          "SQLite file is copied first")
    _add_actor(mig, "who takes the schema back (team projects: a lead; default $CURATION_USER)")
    work = sub.add_parser("worker", help="run a PostgreSQL project's queued jobs (retrain and "
                          "compare, fine-tuned folds, flagging, ...) on this host until stopped")
    work.add_argument("--project", required=True,
                      help="the project's SQLAlchemy URL (postgresql+psycopg://user@host/db); a "
                           "password may come from ~/.pgpass or PGPASSWORD instead")
    work.add_argument("--queue", action="append", choices=["gpu", "cpu"], dest="queues",
                      help="take jobs from this queue only (repeat for both; default both): gpu "
                           "for training, cpu for flagging")
    work.add_argument("--once", action="store_true",
                      help="stop when the queue is empty instead of waiting for new jobs")
    work.add_argument("--concurrency", type=_positive_int, default=1,
                      help="jobs run at once (default 1: one training per GPU)")
    imp = sub.add_parser("import", help="validate a file and import it into a project (created "
                         "when it does not exist yet), as the Project page does")
    _add_input_options(imp)
    imp.add_argument("--project", required=True, help="project path or SQLAlchemy URL")
    conflict = imp.add_mutually_exclusive_group()
    conflict.add_argument("--replace", action="store_const", const="replace", dest="on_conflict",
                          help="overwrite an annotator's stored label that differs (each change "
                               "kept in the audit log)")
    conflict.add_argument("--keep", action="store_const", const="keep", dest="on_conflict",
                          help="keep the stored label where the file's differs")
    _add_actor(imp, "who imports (team projects: a lead; default $CURATION_USER)")
    _add_augment_parser(sub)
    ls_out = sub.add_parser("label-studio-tasks", help="the open review queue as Label Studio "
                            "tasks (suggested labels as predictions) and its labelling config")
    ls_out.add_argument("project", metavar="PROJECT", help="project path or SQLAlchemy URL")
    ls_out.add_argument("--out", type=Path, required=True, metavar="TASKS.json")
    ls_out.add_argument("--config", type=Path, metavar="CONFIG.xml",
                        help="also write the labelling interface to paste into Label Studio")
    _add_actor(ls_out, "who builds the review queue when the project has none yet (default "
                       "$CURATION_USER)")
    ls_in = sub.add_parser("label-studio-import", help="completed Label Studio tasks (its JSON "
                           "export) in as review decisions, signed by their annotators")
    ls_in.add_argument("project", metavar="PROJECT", help="project path or SQLAlchemy URL")
    ls_in.add_argument("file", type=Path, metavar="EXPORT.json")
    _add_actor(ls_in, "who imports (team projects: a lead; default $CURATION_USER)")
    cons = sub.add_parser("consensus", help="consensus label per item")
    _add_input_options(cons)
    cons.add_argument("--method", choices=list(METHODS), default="majority")
    cons.add_argument("--out", type=Path, required=True, metavar="OUT.csv")
    return parser


def _add_actor(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--as", dest="actor", default=os.environ.get("CURATION_USER"), help=help)


def _add_augment_parser(sub) -> None:
    from curation.augment import AUGMENTERS, CATEGORIES

    aug = sub.add_parser("augment", help="new training rows that keep meaning and label")
    _add_input_options(aug)
    aug.add_argument("--method", choices=sorted(AUGMENTERS), required=True)
    aug.add_argument("--out", type=Path, required=True, metavar="OUT.csv",
                     help="accepted rows with their provenance and scores")
    aug.add_argument("--rejected", type=Path, metavar="OUT.csv",
                     help="also write every rejected candidate with its reasons")
    aug.add_argument("--project", help="apply this project's review decisions (path or URL)")
    _add_actor(aug, "who reads the project's curated data (team projects: a lead; default "
                    "$CURATION_USER)")
    aug.add_argument("--model", help="masked-lm: fill-mask model; embedding-neighbours: model folder")
    aug.add_argument("--forward", help="back-translation: model translating out of the language")
    aug.add_argument("--backward", help="back-translation: model translating back")
    aug.add_argument("--glossary", default="finance",
                     help="glossary: YAML path or a shipped name (finance, bank_support)")
    aug.add_argument("--top-k", type=int, default=5)
    aug.add_argument("--max-share", type=float, default=0.15,
                     help="largest share of a text's words one candidate may change")
    aug.add_argument("--allow", default="", metavar="CATS",
                     help=f"comma list of protections to lift: {', '.join(CATEGORIES)}")
    aug.add_argument("--min-similarity", type=float, default=0.80)
    aug.add_argument("--min-label-prob", type=float, default=0.50)
    aug.add_argument("--label-tolerance", type=float, default=0.05,
                     help="for sources the model already doubts: how far below the source's "
                          "probability a candidate may fall")
    aug.add_argument("--max-neighbour-similarity", type=float, default=0.97)
    aug.add_argument("--target", action="append", default=[], metavar="LABEL=N",
                     help="wanted final count of a class (repeatable; default: lift minority "
                          "classes towards the largest)")
    aug.add_argument("--items", metavar="ID,ID,...", help="augment only these items")
    aug.add_argument("--per-item", type=int, default=1, help="rows per item with --items")
    aug.add_argument("--max-per-item", type=int, default=3)
    aug.add_argument("--oversample", type=float, default=3.0, help="candidates tried per wanted row")
    aug.add_argument("--side", choices=("text_pair", "text"), default="text_pair",
                     help="sentence pairs: which text to rewrite (the other is kept); "
                          "default the second")
    aug.add_argument("--seed", type=int, default=0)


def _add_flagging_options(p: argparse.ArgumentParser, *, no_model: str) -> None:
    """The options of a flagging pass: guideline, embedding model (or none), seed."""
    p.add_argument("--guideline", type=Path, help="guideline YAML linking flags to boundary rules")
    p.add_argument("--model", default=None, help="sentence-embedding model (default: bundled MiniLM)")
    p.add_argument("--no-model", action="store_true", help=no_model)
    p.add_argument("--model-probs", type=Path, metavar="PROBS.csv",
                   help="out-of-fold class probabilities of a fine-tuned classifier "
                        "(python -m fine_tune out-of-fold writes them)")
    p.add_argument("--model-signal", choices=list(MODEL_SIGNALS), default=None,
                   help="what the model-based flaggers read: the embedding model (default), the "
                        "--model-probs alone (fine-tuned) or their mean (ensemble, the default "
                        "with --model-probs)")
    p.add_argument("--seed", type=int, default=0)


def _warn_language(args: argparse.Namespace, frame: pd.DataFrame) -> None:
    """On stderr, when the texts' script is not one the embedding model was trained on."""
    if not args.no_model:
        warning = model_warning(frame.drop_duplicates("item_id")["text"], args.model)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)


def _flagging_inputs(args: argparse.Namespace, frame: pd.DataFrame):
    """``(guideline, embeddings, model options)`` for a flagging pass (:func:`_add_flagging_options`)."""
    guideline = load_guideline(args.guideline) if args.guideline else None
    signal = args.model_signal or ("ensemble" if args.model_probs else "embedding")
    if signal != "embedding" and not args.model_probs:
        raise ValueError(f"--model-signal {signal} reads fine-tuned probabilities: give them with "
                         "--model-probs PROBS.csv (python -m fine_tune out-of-fold writes them).")
    if args.model_probs and signal == "embedding":
        raise ValueError("--model-probs is read only by --model-signal fine-tuned or ensemble.")
    if signal == "ensemble" and args.no_model:
        raise ValueError("--model-signal ensemble averages the embedding model with --model-probs: "
                         "leave out --no-model, or use --model-signal fine-tuned.")
    model = {"model_signal": signal, "model_probs": read_model_probs(
        args.model_probs, encoding=args.encoding, max_bytes=int(args.max_mb * 2**20))
        if args.model_probs else None}
    if args.no_model:
        return guideline, None, model
    from curation.embeddings import Embedder, embed_items

    embedder = Embedder(args.model) if args.model else Embedder()
    return guideline, embed_items(frame, embedder=embedder), model


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--file-type", choices=["csv", "tsv", "jsonl", "json", "parquet", "hf"])
    p.add_argument("--map", action="append", default=[], metavar="FILE_COLUMN=NAME",
                   help="rename a column, e.g. --map worker=annotator_id (repeatable)")
    p.add_argument("--annotator-columns", metavar="A,B,...", help="wide format: annotator columns")
    p.add_argument("--labels", metavar="L1,L2,...", help="declared label set")
    p.add_argument("--encoding", help="text encoding (default: UTF-8, with or without BOM)")
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_BYTES / 2**20,
                   help="refuse files larger than this (default 200)")
    p.add_argument("--max-text-chars", type=int, default=None,
                   help=f"refuse texts longer than this (default {DEFAULT_MAX_TEXT_CHARS:,}; "
                        "the same as --limit max_text_chars=N)")
    p.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                   help="raise or lower a limit on what the file may expand to, e.g. "
                        f"--limit max_rows=5000000 (repeatable); names: {', '.join(LIMITS)}. "
                        "Unset limits come from CURATION_MAX_ROWS etc., else the defaults")


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
        encoding=args.encoding, max_bytes=int(args.max_mb * 2**20), **_limits(args))


def _limits(args: argparse.Namespace) -> dict[str, int]:
    """``--limit max_rows=5000000 ...`` (and ``--max-text-chars``) as load_annotations keywords."""
    out = {} if args.max_text_chars is None else {"max_text_chars": args.max_text_chars}
    for item in args.limit:
        keyword, _, value = item.partition("=")
        keyword = keyword.strip()
        if keyword not in LIMITS:
            raise ValueError(f"--limit {item!r}: {keyword!r} is no limit{suggest(keyword, LIMITS)}; "
                             f"use one of {', '.join(LIMITS)}, e.g. --limit max_rows=5000000.")
        out[keyword] = parse_limit(value.strip(), f"--limit {keyword}")
    return out


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _run_agreement(args: argparse.Namespace) -> int:
    df = _load(args)
    report = agreement_report(df, labels=declared_labels(df), target=args.target,
                              judge_by=args.judge_by, consensus=args.consensus, n_boot=args.n_boot, seed=args.seed,
                              top_k=args.top)
    print(format_report(report, annotators=args.annotators, min_overlap=args.min_overlap,
                        min_items=args.min_items))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _run_consensus(args: argparse.Namespace) -> int:
    df = _load(args)
    model = make_aggregator(args.method, labels=declared_labels(df)).fit(df)
    out = consensus_frame(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    n_ties = int((out["tie"] != "").sum())
    print(f"wrote {len(out)} consensus labels ({args.method}) to {args.out}"
          + (f"; {n_ties} ties left unresolved (label empty, 'tie' lists the tied labels)" if n_ties else ""))
    return 0


def _run_flag(args: argparse.Namespace) -> int:
    df = _load(args)
    _warn_language(args, df)
    guideline, embeddings, model = _flagging_inputs(args, df)
    report = flag_items(df, labels=declared_labels(df), embeddings=embeddings, guideline=guideline,
                        seed=args.seed, **model)
    ordered = flags_in_priority_order(report)
    print(f"{len(report.queue)} items flagged ({len(report.flags)} flags: "
          f"{', '.join(f'{k} {v}' for k, v in report.counts().items()) or 'none'})")
    for kind, why in report.skipped.items():
        print(f"  skipped {kind}: {why}")
    shown = report.queue.head(args.top)[["item_id", "priority", "kinds", "suggested_label", "rule_id"]]
    print(_indent(shown.round(3).to_string(index=False)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(ordered, indent=2), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _run_evaluate_flags(args: argparse.Namespace) -> int:
    from curation.flags import evaluate_flags, read_truth, truth_from_frame

    df = _load(args)
    _warn_language(args, df)
    labels = declared_labels(df) or sorted(set(df["label"]))
    if args.truth:
        truth = read_truth(args.truth, labels=labels, encoding=args.encoding,
                           max_bytes=int(args.max_mb * 2**20))
        source = args.truth.name
    else:
        truth, source = truth_from_frame(df), f"the gold column of {args.file.name}"
        if truth.empty:
            raise ValueError(f"{args.file.name} has no gold labels: give the true labels with "
                             "--truth TRUTH.csv (columns item_id and label).")
    guideline, embeddings, model = _flagging_inputs(args, df)
    result = evaluate_flags(df, truth, embeddings=embeddings, guideline=guideline, seed=args.seed,
                            truth_source=source, labels=labels, **model)
    print(format_flag_evaluation(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def format_flag_evaluation(result) -> str:
    """The evaluation as text: a line of counts, the table, the tied items, what it says."""
    lines = [f"truth: {result.truth_source}; {result.n_items} ranked items, {result.n_wrong} with a "
             f"wrong majority label; {result.n_queue} of them flagged by the queue"]
    if result.n_unknown_truth:
        lines.append(f"  ({result.n_unknown_truth} truth ids are not in the annotations: left out)")
    table = result.table()
    header = ["ordering", "AUC"] + [f"P@{k}" for k in result.ks] + [f"R@{k}" for k in result.ks] \
        + ["R@P>=0.7"]
    rows = []
    for _, row in table.iterrows():
        cells = [row["ordering"], _num(row["AUC"])]
        cells += [_num(row[f"precision@{k}"]) for k in result.ks]
        cells += [_num(row[f"recall@{k}"]) for k in result.ks]
        cells.append(_num(row[table.columns[-1]]))
        rows.append(cells)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))))
    for name, why in result.missing.items():
        lines.append(f"  not computed: {name} ({why})")
    if result.calibration:
        lines.append("calibration of the consensus (is the label right as often as it is sure?):")
        for name, c in result.calibration.items():
            sure = (f"; {c['n_sure']} at >= 0.99, right {c['sure_accuracy']:.3f}" if c["n_sure"]
                    else "")
            lines.append(f"  {name:<28} ECE {c['ece']:.3f}; mean confidence "
                         f"{c['mean_confidence']:.3f}, right {c['accuracy']:.3f}{sure}")
    ties = result.ties
    if ties["n"]:
        lines.append(f"tied votes (left out of the ranking): {ties['n']} items; the truth is among "
                     f"the tied labels for {ties['truth_in_tie']}; the tie-break label is right for "
                     f"{ties['tie_break_right']}")
    lines.append(result.summary())
    return "\n".join(lines)


def _num(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and value != value) else f"{value:.3f}"


def flags_in_priority_order(report) -> list[dict]:
    """Every flag as a dict, items in queue order, an item's flags by descending score."""
    rank = {item: i for i, item in enumerate(report.queue["item_id"])}
    priority = report.queue.set_index("item_id")["priority"]
    flags = report.flags.assign(_rank=report.flags["item_id"].map(rank))
    flags = flags.sort_values(["_rank", "score"], ascending=[True, False], kind="stable")
    rows = []
    for rec in flags.drop(columns="_rank").to_dict(orient="records"):
        rec = {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
        rows.append({**rec, "score": float(rec["score"]), "priority": float(priority[rec["item_id"]])})
    return rows


def _run_export(args: argparse.Namespace) -> int:
    df = _load(args)
    decisions = None
    if args.project:
        with projects.open_existing(args.project) as project:
            decisions = export_actions.decisions_for(project, actor=args.actor, out_dir=args.out)
    result = export_curated(df, args.out, decisions=decisions, labels=declared_labels(df),
                            test_size=args.test_size,
                            val_size=args.val_size, seed=args.seed, formats=_split(args.formats),
                            include_ambiguous=args.include_ambiguous, excel_safe=args.excel_safe)
    counts = result.splits["split"].value_counts()
    print(f"wrote {len(result.splits)} rows to {args.out}: "
          + ", ".join(f"{s} {counts.get(s, 0)}" for s in ("train", "validation", "test")))
    manifest = write_manifest(result, actor=args.actor, options={
        "test_size": args.test_size, "val_size": args.val_size, "seed": args.seed,
        "formats": _split(args.formats), "include_ambiguous": args.include_ambiguous,
        "excel_safe": args.excel_safe, "project": bool(args.project)})
    top = [Path(p).relative_to(result.out_dir).parts for p in result.files]
    shown = [parts[0] for parts in top if len(parts) == 1]
    folders = {parts[0]: sum(1 for q in top if q[0] == parts[0]) for parts in top if len(parts) > 1}
    shown += [f"{name}/ ({n} files: a Hugging Face DatasetDict, datasets.load_from_disk)"
              for name, n in folders.items()]
    print("files: " + ", ".join(shown) + f", {ITEMS_FILE}, {manifest.name}")
    return 0


def _run_exports(args: argparse.Namespace) -> int:
    if args.diff:
        old, new = (_export_folder(args.root, v) for v in args.diff)
        diff = diff_exports(old, new)
        print(diff.summary())
        for name in ("added", "removed", "relabelled", "moved"):
            table = getattr(diff, name)
            if len(table):
                print(f"\n{name} ({len(table)}):")
                print(_indent(table.head(20).to_string(index=False)))
                if len(table) > 20:
                    print(f"  ... {len(table) - 20} more (--json has them all)")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(diff.to_dict(), indent=2, default=str),
                                 encoding="utf-8")
            print(f"\nwrote {args.json}")
        return 0
    if not args.root.is_dir():
        raise ValueError(f"{args.root} is not a folder; pass a project's exports folder "
                         "($CURATION_HOME/exports/<project>).")
    table = export_versions(args.root)
    if table.empty:
        print(f"no versioned export in {args.root}")
        return 0
    table = table.assign(version=table["version"].map("v{:04d}".format)).drop(columns=["folder"])
    print(table.fillna("").to_string(index=False))
    return 0


def _export_folder(root: Path, given: str) -> Path:
    """A version (``v0002`` or ``2``) under ``root``, or an export folder's own path."""
    text = given.strip()
    number = text[1:] if text[:1] in ("v", "V") else text
    if number.isdigit():
        return root / f"v{int(number):04d}"
    return Path(text)


def _run_label_studio_tasks(args: argparse.Namespace) -> int:
    from actions.review import flag, label_studio_tasks

    with projects.open_existing(args.project) as project:
        if project.latest_flags_run_id() is None:  # never flagged: build the queue, as the app does
            report = flag(project, actor=args.actor)
            print(f"built the review queue: {len(report.queue)} items flagged (embeddings cached "
                  "in the project)")
        tasks, config = label_studio_tasks(project)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.config:
        args.config.write_text(config + "\n", encoding="utf-8")
    print(f"wrote {len(tasks)} open review items as Label Studio tasks to {args.out}"
          + (f" and the labelling config to {args.config}" if args.config else "")
          + ("" if tasks else " (nothing to review: every flagged item is decided)"))
    return 0


def _run_label_studio_import(args: argparse.Namespace) -> int:
    from actions.review import import_label_studio

    with projects.open_existing(args.project) as project:
        ids = import_label_studio(project, args.file, name=args.file.name, actor=args.actor)
        log = project.decisions()
    added = log[log["decision_id"].isin(ids)]
    print(f"imported {len(ids)} decisions from {args.file.name}: "
          + ", ".join(f"{a} {n}" for a, n in added["action"].value_counts().items())
          + f"; by {', '.join(sorted(set(added['reviewer'])))}" if ids else
          f"no decisions in {args.file.name}")
    return 0


def _run_members(args: argparse.Namespace) -> int:
    with projects.open_existing(args.project) as project:
        if args.add:
            projects.set_member(project, args.add, args.role, actor=args.actor)
            article = "an" if args.role == "annotator" else "a"
            print(f"{args.add} is now {article} {args.role} of {project.display_url}")
        if args.remove:
            projects.remove_member(project, args.remove, actor=args.actor)
            print(f"removed {args.remove} from {project.display_url}")
        members = projects.members(project)
    if members.empty:
        print("no members: local (single-user) mode")
    for row in members.itertuples():
        print(f"{row.name}\t{row.role}\tadded by {row.added_by}")
    return 0


def _run_migrate(args: argparse.Namespace) -> int:
    state = projects.schema(args.project)
    shown = state.current or "none (schema version 1, before revisions)"
    print(f"schema revision {shown}; this curation's newest is {state.head}")
    if args.check:
        if state.pending:
            print(f"pending: {', '.join(state.pending)} (run: curation migrate {args.project})")
            return 1
        print("up to date")
        return 0
    if args.to:
        projects.take_schema_back(args.project, args.to, actor=args.actor)
        print(f"taken back to revision {args.to}; opening it with this curation upgrades it again")
        return 0
    if not state.pending:
        print("up to date")
        return 0
    after = projects.upgrade_schema(args.project)
    print(f"upgraded to revision {after.current} ({', '.join(state.pending)} applied)")
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    from actions import jobs  # the training stack loads for this command only

    print(f"serving the job queue ({', '.join(args.queues or ['gpu', 'cpu'])}) of "
          f"{redact_url(args.project)}; Ctrl-C stops it (a running job after its current step, recorded cancelled)",
          file=sys.stderr)
    jobs.run_worker(args.project, queues=args.queues, once=args.once,
                    concurrency=args.concurrency)
    return 0


def _run_import(args: argparse.Namespace) -> int:
    """Import as the Project page does. An existing project: the role first (before the file is
    read), then the file, then one transaction. A new one: the file is validated before the
    project is created, so a bad file leaves nothing behind."""
    on_conflict = args.on_conflict or "error"
    try:
        project = projects.open_existing(args.project)
    except NoProjectError:
        project = None
    if project is not None:
        with project:
            require(project, args.actor, projects.import_action(on_conflict))
            result = _import_into(project, args, on_conflict)
    else:
        frame = _load(args)
        with projects.create_at(args.project, actor=args.actor) as project:
            result = _import_into(project, args, on_conflict, frame)
    print(f"imported {args.file.name} into {project.display_url}: {result.n_new_items} new items, "
          f"{result.n_new_annotations} new annotations, {result.n_unchanged} unchanged, "
          f"{result.n_replaced} replaced")
    return 0


def _import_into(project, args: argparse.Namespace, on_conflict: str,
                 frame: pd.DataFrame | None = None):
    frame = _load(args) if frame is None else frame
    return projects.import_frame(project, frame, source=args.file.name, on_conflict=on_conflict,
                                 actor=args.actor)


def _check_model_folder(value: str | None, option: str) -> None:
    """A model given as a path (absolute, or starting with ., .. or ~) must be a folder: said
    before any data is read, even when nothing turns out to need augmenting."""
    if not value or not value.startswith(("/", "./", "../", "~", "\\")) and ":" not in value[:3]:
        return
    if not Path(value).expanduser().is_dir():
        raise ValueError(f"{option} {value}: no such model folder; give a local folder holding the "
                         "model (config.json and weights) or a model id.")


def _augmenter_from_args(args: argparse.Namespace):
    from curation.augment import Protector, load_glossary, make_augmenter

    allow = _split(args.allow) or []
    for value, option in ((args.model, "--model"), (args.forward, "--forward"),
                          (args.backward, "--backward")):
        _check_model_folder(value, option)
    common = {"seed": args.seed}
    if args.method == "back-translation":
        if not args.forward or not args.backward:
            raise ValueError("--method back-translation needs --forward MODEL and --backward MODEL "
                             "(Hugging Face ids or local folders).")
        return make_augmenter(args.method, forward=args.forward, backward=args.backward,
                              protector=Protector(allow=allow), **common)
    common.update(top_k=args.top_k, max_share=args.max_share)
    if args.method == "glossary":
        glossary = load_glossary(args.glossary)
        return make_augmenter(args.method, glossary=glossary,
                              protector=Protector(terms=glossary.protected, allow=allow), **common)
    if args.method == "masked-lm" and not args.model:
        raise ValueError("--method masked-lm needs --model (a fill-mask model id or local folder).")
    return make_augmenter(args.method, model=args.model, protector=Protector(allow=allow), **common)


def _targets(values: Sequence[str]) -> dict[str, int] | None:
    out = {}
    for item in values:
        label, _, count = item.rpartition("=")
        if not label or not count.strip().isdigit():
            raise ValueError(f"--target {item!r} must look like LABEL=N, e.g. negative=800.")
        out[label.strip()] = int(count)
    return out or None


def _run_augment(args: argparse.Namespace) -> int:
    from curation.augment import CheckSettings, augment
    from curation.augment import whole_pairs
    from curation.schema import text_columns
    from curation.curate import curate

    augmenter = _augmenter_from_args(args)
    checks = CheckSettings(min_similarity=args.min_similarity, min_label_prob=args.min_label_prob,
                           label_tolerance=args.label_tolerance,
                           max_neighbour_similarity=args.max_neighbour_similarity)
    df = _load(args)
    decisions = None
    if args.project:
        with projects.open_existing(args.project) as project:
            decisions = export_actions.decisions_for(project, actor=args.actor, out_dir=args.out,
                                                     what="augment")
    result = augment(curate(df, decisions, labels=declared_labels(df)), augmenter, targets=_targets(args.target),
                     items=_split(args.items), per_item=args.per_item,
                     max_per_item=args.max_per_item, oversample=args.oversample, checks=checks,
                     side=args.side)
    texts = text_columns(df)
    columns = ["source_id", *texts, "label", "method", "changes", "similarity", "label_prob",
               "predicted_label", "nearest_id", "nearest_similarity", "params"]
    _write_candidates(result.accepted[columns], args.out)
    if args.rejected:
        _write_candidates(whole_pairs(result.rejected)[[*columns, "reason"]], args.rejected)
    s = result.summary
    print(f"{s['method']}: tried {s['tried']} candidates for {s['sources']} source items, "
          f"{s['passed']} passed every check, accepted {s['accepted']} "
          f"({', '.join(f'{k} {v}' for k, v in s['accepted_by_label'].items()) or 'none'})")
    if s["rejections"]:
        print("rejected for: " + ", ".join(f"{k} {v}" for k, v in s["rejections"].items()))
    print(f"wrote {args.out}" + (f" and {args.rejected}" if args.rejected else ""))
    return 0


def _write_candidates(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.assign(params=frame["params"].map(lambda p: json.dumps(p, sort_keys=True))).to_csv(
        path, index=False)


def format_report(report: AgreementReport, *, annotators: int = TOP_ANNOTATORS,
                  min_overlap: int = MIN_OVERLAP, min_items: int = MIN_ITEMS) -> str:
    """The report as plain text for a terminal, readable at any number of annotators: summaries
    first, then at most ``annotators`` annotators (most labels first, outliers added) and their
    pairs (worst first), with "N more" lines for the rest (``--json`` has everything)."""
    lines = [f"{report.n_items} items, {report.n_annotators} annotators, "
             f"{report.n_annotations} annotations; labels: {', '.join(report.labels)}", "",
             f"{'coefficient':<22}{'value':>8}   95% CI"]
    for key, value in report.coefficients.items():
        low, high = report.ci[key]
        mark = "  <- judged" if key == report.judged_by else ""
        lines.append(f"{COEFFICIENT_NAMES[key]:<22}{value:>8.3f}   [{low:.3f}, {high:.3f}]{mark}")
    lines += ["", "VERDICT: " + report.verdict(), f"  why this coefficient: {report.judged_reason}"]
    lines += [f"  note: {n}" for n in report.notes]
    lines += ["", *_pair_lines(report, annotators, min_overlap)]
    lines += ["", "per class:", _indent(report.per_class.round(3).to_string())]
    lines += ["", *_annotator_lines(report, annotators, min_items)]
    shown = report.disagreements[["item_id", "votes", "agreement"]]
    lines += ["", "most disputed items:", _indent(shown.round(3).to_string(index=False))]
    return "\n".join(lines)


def _pair_lines(report: AgreementReport, annotators: int, min_overlap: int) -> list[str]:
    summary = report.pair_summary(min_overlap)
    lines = [f"pairwise Cohen's kappa: {summary['n_pairs']} pairs share an item; "
             f"{summary['n_used']} share {min_overlap} or more (--min-overlap)"]
    q = summary["quantiles"]
    if q:
        lines.append(f"  on those: median {q['median']:.3f}, middle half {q['q25']:.3f} to "
                     f"{q['q75']:.3f}, range {q['min']:.3f} to {q['max']:.3f}")
    else:
        lines.append("  no pair shares enough items for its kappa to mean much; judge by the "
                     "coefficients above and the per-annotator agreement below.")
    pairs = report.busiest_pairs(annotators)
    # pairs that share enough items first, lowest kappa first; then the rest, most shared first
    few = (pairs["n"] < min_overlap) | pairs["kappa"].isna()
    pairs = pd.concat([pairs[~few].sort_values(["kappa", "a", "b"]).assign(few=False),
                       pairs[few].sort_values(["n", "a", "b"], ascending=[False, True, True])
                       .assign(few=True)])
    if len(pairs):
        lines.append(f"  pairs among the {annotators} annotators with most labels, lowest "
                     f"kappa first (then those sharing fewer than {min_overlap} items):")
        lines += [f"  {r.a:>12} ~ {r.b:<12} kappa {r.kappa:6.3f}  n={r.n}"
                  + ("  (few shared items)" if r.few else "")
                  for r in pairs.head(_MAX_PAIR_LINES).itertuples()]
        if len(pairs) > _MAX_PAIR_LINES:
            lines.append(f"  ... {len(pairs) - _MAX_PAIR_LINES} more pairs (--json has them all)")
    return lines


def _annotator_lines(report: AgreementReport, annotators: int, min_items: int) -> list[str]:
    table = report.per_annotator
    outliers = report.outliers(min_items)
    shown = report.listed(annotators, min_items)
    lines = [f"per annotator ({len(shown)} of {len(table)}: the {annotators} with most labels"
             + (f", and {len(outliers)} outliers" if len(outliers) else "") + "):",
             _indent(table.loc[shown].round(3).to_string())]
    if len(table) > len(shown):
        lines.append(f"  ... {len(table) - len(shown)} more annotators (--annotators N, or --json)")
    lowest = report.lowest(min_items)
    lines.append(f"  lowest agreement with the others' majority among those with {min_items}+ "
                 f"labels: {lowest[0]} ({lowest[1]:.3f})" if lowest else
                 f"  no annotator has {min_items}+ labels to be named lowest (--min-items)")
    if len(outliers):
        lines.append("  outliers (below the lower fence of annotators with "
                     f"{min_items}+ labels): " + ", ".join(outliers.index.astype(str)))
    return lines


_MAX_PAIR_LINES = 20


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    runner = {"label-studio-tasks": _run_label_studio_tasks,
              "label-studio-import": _run_label_studio_import, "agreement": _run_agreement, "consensus": _run_consensus, "flag": _run_flag,
              "evaluate-flags": _run_evaluate_flags, "export": _run_export, "augment": _run_augment,
              "members": _run_members, "migrate": _run_migrate, "import": _run_import,
              "exports": _run_exports, "worker": _run_worker}[args.command]
    try:
        return runner(args)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
