"""The ``fine_tune`` command line: ``python -m fine_tune compare|train|lr-find``.

``compare --before B.csv --after A.csv --test T.csv`` trains on both sides with the same
settings and seeds, prints the verdict and a small table, and writes ``--json``,
``--markdown`` and ``--html`` reports. ``train`` trains one model and prints its accuracy
and loss-curve diagnosis (``train ... --output-dir DIR --resume`` continues a stopped run from
the last complete checkpoint in DIR); ``lr-find`` runs a learning-rate range test; ``attention --model DIR
--text ...`` prints the tokens a saved model's [CLS] attends to most (rollout); ``multitask --task
NAME=TRAIN.csv,TEST.csv --task ...`` compares one shared encoder with one model per task, and
``continual --a TRAIN_A.csv,TEST_A.csv --b TRAIN_B.csv,TEST_B.csv`` measures forgetting of A after
training on B, plain and with EWC; ``out-of-fold --annotations FILE --out PROBS.csv`` fine-tunes
k fold models and writes each item's probabilities from the model that held it out, for
``curation flag --model-probs``. Files are CSV, TSV,
JSONL or Parquet (by extension) with columns ``text`` and ``label``. Bad input exits with
code 2 and the message, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from curation.messages import format_list, suggest

__all__ = ["EXIT_BAD_INPUT", "build_config", "build_parser", "format_compare", "given_settings", "main",
           "read_frame"]

EXIT_BAD_INPUT = 2
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
#: Command-line option -> TrainConfig field.
_CONFIG_OPTIONS = {"epochs": "epochs", "model": "model", "learning_rate": "learning_rate",
                   "batch_size": "batch_size", "max_length": "max_length",
                   "output_dir": "output_dir", "gradient_accumulation": "gradient_accumulation",
                   "precision": "precision", "class_weights": "class_weights",
                   "freeze_layers": "freeze_layers", "unfreeze": "unfreeze_schedule",
                   "patience": "early_stopping_patience", "metric": "early_stopping_metric",
                   "warmup_ratio": "warmup_ratio", "weight_decay": "weight_decay",
                   "device": "device", "report_to": "report_to", "tracking_dir": "tracking_dir"}


# --- parser ---------------------------------------------------------------------------------

def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="Hugging Face model id or local folder (default: bundled MiniLM)")
    p.add_argument("--epochs", type=float, help="training epochs")
    p.add_argument("--learning-rate", type=float, help="peak learning rate")
    p.add_argument("--batch-size", type=int, help="training batch size")
    p.add_argument("--max-length", type=int, help="longest input in tokens")
    p.add_argument("--gradient-accumulation", type=int, help="steps summed before each update")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"],
                   help="auto (default): bf16 on a GPU that has it, else fp16; fp32 on CPU")
    p.add_argument("--class-weights", choices=["none", "balanced"], help="weight the loss by class")
    p.add_argument("--freeze-embeddings", action="store_true", help="keep the embeddings fixed")
    p.add_argument("--freeze-layers", type=int, help="keep the lowest N encoder layers fixed")
    p.add_argument("--unfreeze", type=_schedule, metavar="EPOCH:N,...",
                   help="gradual unfreezing, e.g. 1:2,2:2 (needs --freeze-layers)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs (0: off)")
    p.add_argument("--metric", choices=["eval_loss", "eval_accuracy", "eval_macro_f1"],
                   help="what early stopping watches")
    p.add_argument("--warmup-ratio", type=float, help="share of steps warming the rate up")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="default: a GPU if there is one")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--output-dir", help="where checkpoints and the model go")
    p.add_argument("--report-to", type=_trackers, metavar="mlflow,tensorboard",
                   help="experiment tracking to local stores in --tracking-dir: MLflow (a file "
                        "SQLite file, mlflow.db) and/or TensorBoard (event files, tensorboard/)")
    p.add_argument("--tracking-dir", help="folder the trackers write to (needed with --report-to)")


def _trackers(text: str) -> tuple[str, ...]:
    """``"mlflow,tensorboard"`` -> ``("mlflow", "tensorboard")``."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in ("mlflow", "tensorboard")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown tracker(s) {unknown}; use mlflow and/or "
                                         "tensorboard, e.g. --report-to mlflow,tensorboard")
    return names


def _schedule(text: str) -> tuple[tuple[int, int], ...]:
    """``"1:2,2:2"`` -> ``((1, 2), (2, 2))``."""
    try:
        pairs = [part.split(":") for part in text.split(",") if part.strip()]
        return tuple((int(a), int(b)) for a, b in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a schedule; write EPOCH:N pairs such as 1:2,2:2") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fine_tune",
        description="Fine-tune a text classifier, and compare training before and after curation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="train before and after curation, judge on one test set")
    cmp_.add_argument("--before", type=Path, required=True, metavar="B.csv")
    cmp_.add_argument("--after", type=Path, required=True, metavar="A.csv")
    cmp_.add_argument("--test", type=Path, required=True, metavar="T.csv")
    cmp_.add_argument("--seeds", type=int, default=3, help="runs per side, seeds 0..N-1 (default 3)")
    cmp_.add_argument("--validation-size", type=float, default=0.1)
    cmp_.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    cmp_.add_argument("--min-effect", type=float, default=0.02,
                      help="smallest change in accuracy that matters (default 0.02 = 2 points)")
    cmp_.add_argument("--cache-dir", type=Path, metavar="DIR",
                      help="finished runs kept by content (default: $CURATION_HOME/compare-cache)")
    cmp_.add_argument("--no-cache", action="store_true",
                      help="train every run, even when an identical one is cached")
    _add_training_options(cmp_)
    cmp_.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    cmp_.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the report as Markdown")
    cmp_.add_argument("--html", type=Path, metavar="OUT.html", help="write the report as HTML")
    cmp_.add_argument("--rules", type=Path, metavar="RULES.yaml",
                      help="post-processing rules: report accuracy with and without, every override")
    adv = sub.add_parser("advise", help="recommend a backbone and settings from the data's traits")
    adv.add_argument("--train", type=Path, required=True, metavar="T.csv")
    _add_training_options(adv)
    adv.add_argument("--json", type=Path, metavar="OUT", help="write traits and advice as JSON")
    rul = sub.add_parser("rules", help="apply post-processing rules to predictions and score them")
    rul.add_argument("--rules", type=Path, required=True, metavar="RULES.yaml")
    rul.add_argument("--predictions", type=Path, required=True, metavar="P.csv",
                     help="columns text, predicted and (to score) label")
    rul.add_argument("--out", type=Path, metavar="OUT.csv", help="write the rows with rule_label, rule_id")
    rul.add_argument("--json", type=Path, metavar="OUT", help="write the evaluation as JSON")
    train = sub.add_parser("train", help="train one classifier and read its loss curves")
    train.add_argument("--train", type=Path, required=True, metavar="T.csv")
    train.add_argument("--validation", type=Path, metavar="V.csv")
    train.add_argument("--test", type=Path, metavar="X.csv")
    train.add_argument("--seed", type=int, default=0)
    _add_training_options(train)
    train.add_argument("--save-to", type=Path, metavar="DIR",
                       help="save the final model (safetensors), its tokenizer and a model card "
                            "(README.md: labels, settings, scores) in DIR")
    train.add_argument("--resume", action="store_true",
                       help="continue a stopped run from the last complete checkpoint in "
                            "--output-dir (give the same files and settings)")
    train.add_argument("--json", type=Path, metavar="OUT", help="write the result as JSON")
    lr = sub.add_parser("lr-find", help="learning-rate range test")
    lr.add_argument("--train", type=Path, required=True, metavar="T.csv")
    lr.add_argument("--seed", type=int, default=0)
    _add_training_options(lr)
    lr.add_argument("--json", type=Path, metavar="OUT", help="write the curve as JSON")
    att = sub.add_parser("attention", help="which tokens a saved fine-tuned model attends to")
    att.add_argument("--model", required=True, metavar="DIR",
                     help="folder of a saved model (train_classifier(save_to=...), a job's models/after)")
    att.add_argument("--text", required=True, help="the sentence to look at")
    att.add_argument("--layer", type=int, help="also rank tokens by this layer's [CLS] row (from 0)")
    att.add_argument("--head", type=int, help="with --layer: one head (from 0); default the mean")
    att.add_argument("--top", type=int, default=10, help="tokens to list (default 10)")
    att.add_argument("--max-length", type=int, default=128, help="longest input in word pieces")
    att.add_argument("--json", type=Path, metavar="OUT",
                     help="write tokens, prediction, attentions and rollout as JSON")
    oof = sub.add_parser("out-of-fold", help="fine-tuned out-of-fold class probabilities, for "
                         "curation flag --model-probs (a stronger model signal for the review queue)")
    oof.add_argument("--annotations", type=Path, required=True, metavar="FILE",
                     help="the annotation file, as curation reads it (long: item_id, text, "
                          "annotator_id, label)")
    oof.add_argument("--labels", metavar="L1,L2,...", help="declared label set")
    oof.add_argument("--out", type=Path, required=True, metavar="PROBS.csv",
                     help="item_id and one probability column per label")
    oof.add_argument("--folds", type=int, default=5, help="models trained, each on the other folds "
                                                          "(default 5)")
    oof.add_argument("--seed", type=int, default=0, help="seeds the folds and every training")
    _add_training_options(oof)
    oof.add_argument("--json", type=Path, metavar="OUT", help="write the run's summary as JSON")
    _add_experiment_parsers(sub)
    return parser


# --- input ----------------------------------------------------------------------------------

def _parse_file(path: Path) -> pd.DataFrame:
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown file type {path.suffix!r}; use one of "
                         f"{', '.join(sorted(_READERS))}.")
    if not path.is_file():
        raise ValueError(f"{path}: no such file.")
    if kind in ("csv", "tsv"):
        return pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype=str,
                           keep_default_na=False)
    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=kind == "jsonl", dtype=False)


def read_frame(path: str | Path) -> pd.DataFrame:
    """A training or test frame from CSV/TSV/JSONL/JSON/Parquet, with ``text`` and ``label``.

    Extra columns are kept (``item_id``, ``augmented_from``); an empty ``augmented_from``
    becomes ``None``. A missing column raises ``ValueError`` naming the file, the column
    and the closest column name.
    """
    path = Path(path)
    try:
        frame = _parse_file(path)
    except (OSError, ValueError, ImportError) as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: could not read it ({err}).") from err
    for col in ("text", "label"):
        if col not in frame.columns:
            raise ValueError(f"{path}: no column {col!r} (columns: {format_list(frame.columns)}); "
                             f"rename a column to {col!r}{suggest(col, list(frame.columns))}")
    frame = frame.assign(label=frame["label"].where(frame["label"].isna(),
                                                    frame["label"].astype(str)))
    if "augmented_from" in frame.columns:
        frame["augmented_from"] = frame["augmented_from"].replace("", None)
    return frame


# --- config ---------------------------------------------------------------------------------

def _config_class() -> type:
    from fine_tune.config import TrainConfig

    return TrainConfig


def _lora_setting(cls: type) -> dict[str, Any]:
    """The TrainConfig keyword that turns LoRA on, whatever the field is called."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in ("lora", "use_lora"):
        if name in fields:
            return {name: True}
    for name, f in fields.items():
        enum_type = type(f.default)
        members = getattr(enum_type, "__members__", {})
        for member_name, member in members.items():
            if member_name.lower() == "lora":
                return {name: member}
    raise ValueError("--lora: this TrainConfig has no LoRA setting; leave --lora out.")


def given_settings(args: argparse.Namespace, cls: type | None = None) -> dict[str, Any]:
    """The training settings given on the command line (``TrainConfig`` field -> value)."""
    cls = cls or _config_class()
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {field: getattr(args, opt) for opt, field in _CONFIG_OPTIONS.items()
              if getattr(args, opt, None) is not None and field in names}
    if kwargs.get("epochs") is not None and float(kwargs["epochs"]).is_integer():
        kwargs["epochs"] = int(kwargs["epochs"])
    if getattr(args, "freeze_embeddings", False):
        kwargs["freeze_embeddings"] = True
    if getattr(args, "lora", False):
        kwargs.update(_lora_setting(cls))
    if getattr(args, "resume", False) and "resume_from_checkpoint" in names:
        kwargs["resume_from_checkpoint"] = True
    return kwargs


def build_config(args: argparse.Namespace, *, seed: int | None = None) -> Any:
    """A ``TrainConfig`` from the defaults and the options given on the command line."""
    cls = _config_class()
    kwargs = given_settings(args, cls)
    if seed is not None and "seed" in {f.name for f in dataclasses.fields(cls)}:
        kwargs["seed"] = seed
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad training settings: {err}") from err


# --- commands -------------------------------------------------------------------------------

def _trainer():
    """The trainer both commands use (the compare module's hook, so tests replace one thing)."""
    from fine_tune import compare as compare_module

    return compare_module._default_trainer()


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _progress_bar():
    """A tqdm bar on stderr driven by ``progress(fraction, message)``; ``(callback, bar)``."""
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, unit="‰", leave=False, disable=None)

    def progress(fraction: float, message: str) -> None:
        bar.update(max(0, int(fraction * 1000) - bar.n))
        bar.set_description_str(message[:60], refresh=False)

    return progress, bar


def format_compare(d: dict[str, Any]) -> str:
    """The verdict and its reason, a small table of accuracy and macro-F1 per side, the settings."""
    reason = d.get("verdict_reason")
    lines = ([f"VERDICT: {d['verdict']}", reason] if reason else [f"VERDICT: {d['verdict']}"])
    lines += ["", f"{'side':<8}{'rows':>8}{'accuracy':>20}{'macro-F1':>20}"]
    for side in ("before", "after"):
        s = d[side]
        acc, f1 = s["accuracy"], s["macro_f1"]
        fmt = (lambda m: "-" if m["mean"] is None else f"{m['mean']:.3f} ± {m['std']:.3f}")
        lines.append(f"{side:<8}{s['n_train']:>8}{fmt(acc):>20}{fmt(f1):>20}")
    per_seed = [f"seed {r['seed']}: {_acc(r.get('accuracy_before'))} -> {_acc(r.get('accuracy_after'))}"
                for r in d.get("per_seed") or []]
    if per_seed:
        lines.append("per seed (accuracy before -> after): " + "; ".join(per_seed))
    if d.get("delta_ci") is not None:
        low, high = d["delta_ci"]
        lines.append(f"\nchange in accuracy {d['delta']:+.3f} (95% interval {low:+.3f} to {high:+.3f} "
                     f"over seeds and test items, p = {d['p_value']:.2g}); supporting: McNemar "
                     f"p = {d['mcnemar_p']:.3g}; test set {d['test_size']} items, "
                     f"seeds {', '.join(map(str, d['seeds']))}")
    if d.get("reused"):
        lines.append("reused (not trained again): " + ", ".join(
            f"{r['side']} seed {r['seed']}" for r in d["reused"]))
    chosen = (d.get("settings") or {}).get("chosen") or []
    if chosen:
        from fine_tune.settings import describe

        lines += ["", "settings:"] + [f"  {describe(c)}" for c in chosen]
    return "\n".join(lines)


def _acc(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _compare_cache(args: argparse.Namespace) -> Any:
    if args.no_cache:
        return None
    from curation.workspace import curation_home
    from fine_tune.run_cache import RunCache

    return RunCache(args.cache_dir or curation_home() / "compare-cache",
                    origin={"command": "python -m fine_tune compare"})


def _say_plan(plan: dict[str, Any]) -> None:
    """Before training: the settings and what the test set is too small to show (stderr; the
    first process of a distributed run says it)."""
    from fine_tune.settings import describe

    if not _main_process():
        return

    for choice in plan["settings"].get("chosen") or []:
        if choice["source"] == "advice" or choice.get("reason", "").startswith("advice not applied"):
            print(f"setting {describe(choice)}", file=sys.stderr)
    for note in plan["size_notes"]:
        print(f"NOTE: {note}", file=sys.stderr)


def _run_compare(args: argparse.Namespace) -> int:
    from fine_tune.compare import compare

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1; got {args.seeds}.")
    frames = {name: read_frame(getattr(args, name)) for name in ("before", "after", "test")}
    given = given_settings(args)
    build_config(args)              # a bad value fails here, named, before anything is measured
    rules = None
    if args.rules is not None:
        from fine_tune.rules import load_rules

        rules = load_rules(args.rules)
    progress, bar = _progress_bar()
    try:
        report = compare(frames["before"], frames["after"], frames["test"], config=given,
                         seeds=range(args.seeds), validation_size=args.validation_size,
                         n_boot=args.n_boot, progress=progress, trainer=_trainer(), rules=rules,
                         cache=_compare_cache(args), min_effect=args.min_effect, on_start=_say_plan)
    finally:
        bar.close()
    if not _main_process():  # torchrun / accelerate launch: the first process reports
        return 0
    d = report.to_dict()
    print(format_compare(d))
    _write(args.json, json.dumps(d, indent=2))
    _write(args.markdown, report.to_markdown())
    _write(args.html, report.to_html())
    return 0


def _main_process() -> bool:
    """Whether this is the process that reports: the only one, or rank 0 of a distributed run
    (``torchrun`` and ``accelerate launch`` set ``RANK``); the others trained their share."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def _run_advise(args: argparse.Namespace) -> int:
    from fine_tune.advice import advise

    advice = advise(read_frame(args.train), config=build_config(args))
    print(advice.to_markdown())
    _write(args.json, json.dumps(advice.to_dict(), indent=2))
    return 0


def _run_rules(args: argparse.Namespace) -> int:
    from fine_tune.rules import load_rules

    rules = load_rules(args.rules)
    frame = _parse_file(Path(args.predictions))
    missing = [c for c in ("text", "predicted") if c not in frame.columns]
    if missing:
        raise ValueError(f"{args.predictions}: lacks column(s) {missing} (it has {list(frame.columns)}); "
                         "it needs text, predicted and, to score the rules, label.")
    texts, predicted = frame["text"].astype(str).tolist(), frame["predicted"].astype(str).tolist()
    outcome = rules.apply(texts, predicted)
    fired = outcome.fired.set_index("row")
    out = frame.assign(rule_label=outcome.labels,
                       rule_id=[fired["rule_id"].get(i) for i in range(len(frame))])
    _write(args.out, out.to_csv(index=False))
    if "label" in frame.columns:
        result = rules.evaluate(texts, predicted, frame["label"].astype(str).tolist())
        print(f"{len(frame)} rows: accuracy {result['accuracy_without']:.4f} without the rules, "
              f"{result['accuracy_with']:.4f} with them ({result['n_overrides']} overrides)")
        for rule_id, r in result["per_rule"].items():
            print(f"  {rule_id}: fired {r['fired']}, overrides {r['overrides']}, helped {r['helped']}, "
                  f"hurt {r['hurt']}")
        _write(args.json, json.dumps(result, indent=2))
    else:
        print(f"{len(frame)} rows: {len(outcome.overrides)} overrides (no label column to score them)")
    return 0


def _checked(path: Path | None) -> pd.DataFrame | None:
    """``read_frame`` plus the compare checks for empty texts and labels (named by file)."""
    from fine_tune.compare import check_blank

    return None if path is None else check_blank(read_frame(path).reset_index(drop=True), str(path))


def _run_train(args: argparse.Namespace) -> int:
    if args.resume and not args.output_dir:
        raise ValueError("--resume needs --output-dir: the folder of the stopped run, which holds "
                         "its checkpoint-N folders.")
    train, validation, test = (_checked(p) for p in (args.train, args.validation, args.test))
    labels = sorted(set().union(*(f["label"] for f in (train, validation, test) if f is not None)))
    config = build_config(args, seed=args.seed)
    progress, bar = _progress_bar()
    try:
        saving = {"save_to": str(args.save_to)} if args.save_to else {}
        result = _trainer()(train, validation, test, config=config, labels=labels,
                            progress=progress, should_stop=None, **saving)
    finally:
        bar.close()
    if not _main_process():
        return 0
    from fine_tune.compare import train_summary

    d = train_summary(result, test, labels)
    if "accuracy" in d:
        print(f"test accuracy {d['accuracy']:.3f}, macro-F1 {d['macro_f1']:.3f} "
              f"({len(test)} items)")
    print(f"best epoch {d['best_epoch']}, {d['train_seconds']:.1f} s on {d['device']}")
    diagnosis = d.get("diagnosis") or {}
    for message in diagnosis.get("messages") or [diagnosis.get("summary", "")]:
        print(f"- {message}")
    _write(args.json, json.dumps(d, indent=2))
    return 0


def _run_lr_find(args: argparse.Namespace) -> int:
    from fine_tune.config import jsonable
    from fine_tune.lr_finder import lr_range_test

    train = _checked(args.train)
    result = lr_range_test(train, config=build_config(args, seed=args.seed))
    print(f"suggested learning rate: {result.suggested_lr:.3g}")
    _write(args.json, json.dumps(jsonable({"suggested_lr": result.suggested_lr,
                                             "lrs": list(result.lrs),
                                             "smoothed": list(result.smoothed)}), indent=2))
    return 0


def _run_attention(args: argparse.Namespace) -> int:
    from fine_tune.attention import attention_for

    if args.head is not None and args.layer is None:
        raise ValueError(f"--head {args.head} needs --layer; pass both, or neither for the rollout.")
    if args.top < 1:
        raise ValueError(f"--top must be at least 1; got {args.top}.")
    att = attention_for(args.model, args.text, max_length=args.max_length)
    proba = dict(zip(att.labels, att.probabilities))
    print(f"predicted {att.predicted} ({proba[att.predicted]:.3f}); "
          + ", ".join(f"{k} {v:.3f}" for k, v in proba.items()))
    print(f"{len(att.tokens)} tokens, {att.n_layers} layers x {att.n_heads} heads")
    rankings = [("rollout", None, None)]
    if args.layer is not None:
        name = f"layer {args.layer}" + (f", head {args.head}" if args.head is not None else
                                        ", mean of heads")
        rankings.append((name, args.layer, args.head))
    for name, layer, head in rankings:
        print(f"top tokens by [CLS] attention ({name}):")
        for pos, token, weight in att.top_tokens(args.top, layer=layer, head=head):
            print(f"  {pos:>4}  {token:<20} {weight:.4f}")
    if args.json is not None:
        out = att.to_dict()
        if args.layer is not None:
            out["selected"] = {"layer": args.layer, "head": args.head,
                               "matrix": att.matrix(args.layer, args.head).tolist()}
        _write(args.json, json.dumps(out))
    return 0


# --- multi-task and continual learning -------------------------------------------------------

def _add_experiment_parsers(sub: Any) -> None:
    mt = sub.add_parser("multitask", help="one shared encoder on several tasks vs one model per task")
    mt.add_argument("--task", action="append", required=True, metavar="NAME=TRAIN.csv,TEST.csv",
                    help="a task's name, training file and test file; give two or more")
    mt.add_argument("--seeds", type=int, default=3, help="runs per side, seeds 0..N-1 (default 3)")
    mt.add_argument("--schedule", choices=["proportional", "round_robin"], default="proportional",
                    help="how the tasks' batches are interleaved (default proportional)")
    mt.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    _add_training_options(mt)
    mt.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    mt.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the report as Markdown")
    cl = sub.add_parser("continual", help="train on A then on B: forgetting of A, plain vs EWC")
    cl.add_argument("--a", required=True, metavar="TRAIN_A.csv,TEST_A.csv", help="first data set")
    cl.add_argument("--b", required=True, metavar="TRAIN_B.csv,TEST_B.csv", help="second data set")
    cl.add_argument("--ewc-lambda", type=float, help="EWC strength lambda > 0 (default 1e4)")
    cl.add_argument("--fisher-samples", type=int,
                    help="A's training rows the Fisher information is estimated on (default 100)")
    cl.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    cl.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    _add_training_options(cl)
    cl.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    cl.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the report as Markdown")


def _file_pair(text: str, option: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``"TRAIN.csv,TEST.csv"`` -> the two checked frames."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{option} {text!r}: give two files separated by a comma, "
                         "TRAIN.csv,TEST.csv (a training file and a test file).")
    return _checked(Path(parts[0])), _checked(Path(parts[1]))


def _check_seed_count(n: int) -> None:
    if n < 1:
        raise ValueError(f"--seeds must be at least 1; got {n}.")


def _run_multitask(args: argparse.Namespace) -> int:
    from fine_tune.multitask import compare_multitask

    _check_seed_count(args.seeds)
    tasks: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for spec in args.task:
        name, sep, files = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--task {spec!r}: write NAME=TRAIN.csv,TEST.csv, e.g. "
                             "--task sentiment=train.csv,test.csv.")
        if name in tasks:
            raise ValueError(f"--task {name!r} is given twice; give each task a different name.")
        tasks[name] = _file_pair(files, f"--task {name}=")
    if len(tasks) < 2:
        raise ValueError(f"multitask needs at least two --task options; got {len(tasks)} "
                         f"({', '.join(tasks)}).")
    progress, bar = _progress_bar()
    try:
        report = compare_multitask(tasks, build_config(args), seeds=range(args.seeds),
                                   schedule=args.schedule, n_boot=args.n_boot, progress=progress)
    finally:
        bar.close()
    print(report.to_markdown())
    _write(args.json, json.dumps(report.to_dict(), indent=2))
    _write(args.markdown, report.to_markdown())
    return 0


def _run_continual(args: argparse.Namespace) -> int:
    from fine_tune.continual import DEFAULT_EWC_LAMBDA, DEFAULT_FISHER_SAMPLES, compare_continual

    _check_seed_count(args.seeds)
    a, b = _file_pair(args.a, "--a"), _file_pair(args.b, "--b")
    progress, bar = _progress_bar()
    try:
        report = compare_continual(
            a, b, build_config(args), seeds=range(args.seeds),
            ewc_lambda=DEFAULT_EWC_LAMBDA if args.ewc_lambda is None else args.ewc_lambda,
            fisher_samples=DEFAULT_FISHER_SAMPLES if args.fisher_samples is None else args.fisher_samples,
            n_boot=args.n_boot, progress=progress)
    finally:
        bar.close()
    print(report.to_markdown())
    _write(args.json, json.dumps(report.to_dict(), indent=2))
    _write(args.markdown, report.to_markdown())
    return 0


def _run_out_of_fold(args: argparse.Namespace) -> int:
    from curation.io import declared_labels, load_annotations
    from fine_tune.config import jsonable
    from fine_tune.out_of_fold import current_labels, fine_tuned_probabilities

    labels = [v.strip() for v in args.labels.split(",") if v.strip()] if args.labels else None
    df = load_annotations(args.annotations, label_set=labels)
    labels = declared_labels(df) or labels
    frame = current_labels(df, labels=labels)
    progress, bar = _progress_bar()
    try:
        result = fine_tuned_probabilities(frame, labels=labels,
                                          folds=args.folds, seed=args.seed,
                                          config=given_settings(args) or None, progress=progress)
    finally:
        bar.close()
    print(result.summary())
    if result.cancelled:
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.out)
    print(f"wrote {args.out}: use it with curation flag FILE --model-probs {args.out} "
          "--model-signal ensemble (or fine-tuned)")
    _write(args.json, json.dumps(jsonable({
        "folds": result.folds, "fold_agreement": result.fold_agreement, "seconds": result.seconds,
        "device": result.device, "settings": result.settings}), indent=2))
    return 0


_COMMANDS = {"compare": _run_compare, "out-of-fold": _run_out_of_fold, "train": _run_train, "lr-find": _run_lr_find,
             "rules": _run_rules, "advise": _run_advise}
_COMMANDS["attention"] = _run_attention
_COMMANDS.update({"multitask": _run_multitask, "continual": _run_continual})


def _quiet_libraries() -> None:
    """Without -v, no per-run load reports and progress bars from transformers (one per run)."""
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 with the message (no traceback) on bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_libraries()
    try:
        return _COMMANDS[args.command](args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModuleNotFoundError as err:
        print(f"error: {err.name or err} is not available: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
