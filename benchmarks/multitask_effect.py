"""Does multi-task training help? One shared encoder on two tasks against one model per task.

Tasks (each split once, stratified, seed 0: ``--test-rows`` test rows, then a stratified sample of
``--train-rows`` training rows from the rest):

- **phrasebank**: ``../shared/data/financial-phrasebank-50agree/Sentences_50Agree.txt``, 3-class
  financial sentiment (positive / negative / neutral), texts that occur more than once dropped
  (as ``finetune_throughput.py``);
- **amazon_negative**: ``../shared/data/amazon-crowd-sentiment``, the gold ``is_negative`` label of
  the 1,000 reviews (negative / not_negative; 9.9% negative), long texts truncated at
  ``--max-length``.

Model: the bundled all-MiniLM-L6-v2 (``--model`` for another local folder) as a shared encoder
with a linear head per task (mean pooling), against a single-task model per task trained on
exactly the same batches of its task (``fine_tune.multitask``: same rows, batches, order and
epochs). Both sides use the same settings and seeds: learning rate 1e-4, batch 16, and
``--class-weights balanced`` by default, because amazon_negative is 90% "not_negative" and without
weights a short run predicts only that (300 rows, 2 epochs: macro-F1 0.47). Per task it prints
accuracy and macro-F1 (mean ± std over seeds) and the paired bootstrap 95% interval of the
accuracy difference (multi − single) over test items.

The defaults (600 training rows per task, 400 test rows, 2 epochs, max length 64, 3 seeds) take
about 10 minutes on a 2-core CPU.

Run: ``python benchmarks/multitask_effect.py [--seeds 3 --epochs 2 --train-rows 600
--max-length 64 --json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
PHRASEBANK = SHARED / "financial-phrasebank-50agree" / "Sentences_50Agree.txt"
AMAZON = SHARED / "amazon-crowd-sentiment" / "1k_amazon_reviews_crowdsourced.csv"


def phrasebank() -> pd.DataFrame:
    """Financial PhraseBank (50% agreement): ``text``, ``label``; repeated texts dropped."""
    lines = PHRASEBANK.read_text(encoding="utf-8-sig").splitlines()
    rows = [line.rsplit("@", 1) for line in lines if line.strip()]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["label"] = frame["label"].str.strip()
    return frame.drop_duplicates("text", keep=False).reset_index(drop=True)


def amazon_negative() -> pd.DataFrame:
    """Amazon crowd sentiment with its gold label: ``text``, ``label`` (negative / not_negative)."""
    raw = pd.read_csv(AMAZON)
    frame = pd.DataFrame({"text": raw["text"].astype(str),
                          "label": raw["is_negative"].map({1: "negative", 0: "not_negative"})})
    return frame.drop_duplicates("text", keep=False).reset_index(drop=True)


def split(frame: pd.DataFrame, train_rows: int, test_rows: int, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified test set of ``test_rows`` (seed 0), then ``train_rows`` stratified from the rest."""
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(frame, test_size=test_rows, stratify=frame["label"], random_state=0)
    if train_rows < len(rest):
        rest, _ = train_test_split(rest, train_size=train_rows, stratify=rest["label"], random_state=0)
    elif train_rows > len(rest):
        print(f"note: {name} has only {len(rest)} rows besides its {test_rows} test rows; "
              f"training on all {len(rest)}.", file=sys.stderr)
    return rest.reset_index(drop=True), test.reset_index(drop=True)


def load_tasks(train_rows: int, test_rows: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``{"phrasebank": (train, test), "amazon_negative": (train, test)}``."""
    for path in (PHRASEBANK, AMAZON):
        if not path.exists():
            sys.exit(f"shared data not found at {path}")
    return {"phrasebank": split(phrasebank(), train_rows, test_rows, "phrasebank"),
            "amazon_negative": split(amazon_negative(), train_rows, test_rows, "amazon_negative")}


def common_options(parser: argparse.ArgumentParser) -> None:
    """Options both benchmarks share."""
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--epochs", type=float, default=2, help="epochs per task (default 2)")
    parser.add_argument("--train-rows", type=int, default=600, help="training rows per task (default 600)")
    parser.add_argument("--test-rows", type=int, default=400, help="test rows per task (default 400)")
    parser.add_argument("--max-length", type=int, default=64, help="word pieces per text (default 64)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--class-weights", choices=["none", "balanced"], default="balanced",
                        help="loss weights by class (default balanced: amazon_negative is 90/10)")
    parser.add_argument("--model", help="local model folder (default: the bundled MiniLM)")
    parser.add_argument("--device", choices=["cpu", "cuda", "mps"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, help="write the report as Markdown")


def make_config(args: argparse.Namespace):
    import torch

    from fine_tune.config import TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    return TrainConfig(model=args.model, epochs=int(args.epochs) if float(args.epochs).is_integer()
                       else args.epochs, learning_rate=args.learning_rate,
                       batch_size=args.batch_size, max_length=args.max_length, device=args.device,
                       class_weights=args.class_weights,
                       early_stopping_patience=0, save_checkpoints=False)


def progress_printer():
    """``progress(fraction, message)`` printing a line to stderr every 5% (and the last)."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def progress(fraction: float, message: str) -> None:
        if fraction >= state["next"] or fraction >= 1.0:
            print(f"[{time.perf_counter() - state['start']:6.0f} s] {fraction:5.1%} {message}",
                  file=sys.stderr, flush=True)
            state["next"] = fraction + 0.05

    return progress


def write(report, args: argparse.Namespace, extra: dict) -> None:
    text = report.to_markdown()
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report.to_dict(), **extra}, indent=2), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_options(parser)
    parser.add_argument("--schedule", choices=["proportional", "round_robin"], default="proportional")
    args = parser.parse_args()
    from fine_tune.multitask import compare_multitask

    tasks = load_tasks(args.train_rows, args.test_rows)
    for name, (train, test) in tasks.items():
        print(f"{name}: {len(train)} train / {len(test)} test rows, labels "
              f"{train['label'].value_counts().to_dict()}", file=sys.stderr)
    start = time.perf_counter()
    report = compare_multitask(tasks, make_config(args), seeds=range(args.seeds),
                               schedule=args.schedule, progress=progress_printer())
    elapsed = time.perf_counter() - start
    write(report, args, {"benchmark": "multitask_effect", "wall_seconds": elapsed,
                         "data": {"phrasebank": str(PHRASEBANK), "amazon_negative": str(AMAZON)},
                         "train_rows": args.train_rows, "test_rows": args.test_rows})
    print(f"wall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
