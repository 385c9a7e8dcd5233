"""Fine-tune a text classifier with the Hugging Face ``Trainer``.

:func:`train_classifier` takes frames with columns ``text`` and ``label``, tokenizes them
(truncated to ``max_length``, padded per batch by ``DataCollatorWithPadding``), trains with
the settings of a :class:`~fine_tune.config.TrainConfig`, evaluates on the validation frame
each epoch, predicts the test frame, and diagnoses the loss curves.

What this module adds to the ``Trainer``, each as a hook rather than a rewrite:

- a class-weighted cross-entropy (``compute_loss`` of :class:`_Trainer`);
- freezing of the embeddings and lowest layers, and gradual unfreezing (a callback; the
  optimizer is built with the frozen layers' parameters so they train once unfrozen);
- LoRA adapters (peft);
- progress reports and cancelling (a callback polling ``should_stop`` each step);
- atomic checkpoints: each is written into a hidden staging folder and renamed to
  ``checkpoint-N`` only when complete, so a run killed mid-save leaves no partial
  ``checkpoint-N``; ``resume_from_checkpoint=True`` takes the last complete one
  (:func:`last_complete_checkpoint`);
- evaluation and prediction in input order (sequential evaluation sampler; evaluation rows
  sorted by length for less padding, the predictions put back in input order).

It runs unchanged under ``torchrun`` or ``accelerate launch``: the Trainer picks the
devices; only ``use_cpu`` is set, when there is no GPU or ``device="cpu"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import inspect
import json
import logging
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import (
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from fine_tune._callbacks import (
    EarlyStopping,
    GradualUnfreeze,
    KeepBestInMemory,
    LogEachEpoch,
    ProgressAndCancel,
)
from fine_tune._inputs import balanced_weights, check_frames, encode
from fine_tune._model import (
    load_model,
    load_tokenizer,
    prepare_model,
    trainable_parameter_count,
)
from fine_tune._runtime import Runtime
from fine_tune.config import ClassWeights, Precision, TrainConfig
from fine_tune.diagnose import Diagnosis, diagnose

__all__ = ["HISTORY_COLUMNS", "TrainResult", "checkpoint_problems", "last_complete_checkpoint",
           "load_model", "prior_loss", "train_classifier"]

logger = logging.getLogger(__name__)

#: Columns of :attr:`TrainResult.history`.
HISTORY_COLUMNS = ("epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_macro_f1",
                   "learning_rate")

Progress = Callable[[float, str], None]


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes
    ----------
    labels : list of str
        Class order: index ``i`` of predictions and probabilities is ``labels[i]``.
    test_pred : numpy.ndarray or None
        Predicted class index per test row, in the test frame's order (None without a
        test frame or when cancelled).
    test_proba : numpy.ndarray or None
        Softmax probabilities, shape ``(n_test, n_labels)``.
    history : pandas.DataFrame
        One row per logged point, columns :data:`HISTORY_COLUMNS` (NaN where not logged).
    best_epoch, best_metric : float or None
        Epoch with the best ``config.early_stopping_metric`` on validation, and its value.
    train_seconds, train_samples_per_second : float
        From the Trainer's training metrics.
    peak_memory_mb : float or None
        Peak GPU memory allocated (CUDA), else the growth of the process's peak resident
        memory (None where the platform cannot tell).
    diagnosis : Diagnosis
        The loss curves in plain words (:func:`fine_tune.diagnose.diagnose`).
    config : TrainConfig
        The settings used.
    device : str
        Where it trained (``"cpu"``, ``"cuda:0"``, ...).
    output_dir : str or None
        The checkpoint folder (None when a temporary one was used and removed).
    cancelled : bool
        True when ``should_stop`` ended training early.
    trainable_params, total_params : int
        Parameters that trained (at the end) and all parameters.
    """

    labels: list[str]
    test_pred: np.ndarray | None
    test_proba: np.ndarray | None
    history: pd.DataFrame
    best_epoch: float | None
    best_metric: float | None
    train_seconds: float
    train_samples_per_second: float
    peak_memory_mb: float | None
    diagnosis: Diagnosis
    config: TrainConfig
    device: str
    output_dir: str | None
    cancelled: bool = False
    trainable_params: int = 0
    total_params: int = 0


# --- checkpoints ----------------------------------------------------------------------------

#: Prefix of the hidden folder a checkpoint is written into before it is renamed into place.
STAGING_PREFIX = ".tmp-"
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
#: Model weights a checkpoint holds, one of (full model, sharded model, LoRA adapters).
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
#: The other files a resume reads (``trainer_state.json`` is the one the Trainer writes last).
_STATE_FILES = ("optimizer.pt", "scheduler.pt", "trainer_state.json")


def checkpoint_problems(folder: str | os.PathLike) -> list[str]:
    """What keeps the Trainer from resuming from ``folder``; empty when it is complete.

    A complete checkpoint has its weights in safetensors (whole, with every byte its header
    promises), ``optimizer.pt`` and ``scheduler.pt`` (whole zip archives) and a readable
    ``trainer_state.json``. A run killed while it saved leaves some of them missing or cut short.

    Examples
    --------
    >>> import tempfile
    >>> for problem in checkpoint_problems(tempfile.mkdtemp()):
    ...     print(problem)
    no model weights (model.safetensors or adapter_model.safetensors)
    no optimizer.pt
    no scheduler.pt
    no trainer_state.json
    """
    folder = Path(folder)
    if not folder.is_dir():
        return ["not a folder"]
    out = _weight_problems(folder)
    for name in _STATE_FILES:
        path = folder / name
        if not path.is_file():
            out.append(f"no {name}")
        elif name.endswith(".pt") and not zipfile.is_zipfile(path):
            out.append(f"{name} is cut short")
        elif name.endswith(".json") and not _readable_state(path):
            out.append(f"{name} is not readable JSON")
    return out


def _weight_problems(folder: Path) -> list[str]:
    present = [folder / name for name in _WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        return ["no model weights (model.safetensors or adapter_model.safetensors)"]
    files = [p for p in present if p.suffix == ".safetensors"]
    for index in (p for p in present if p.suffix == ".json"):  # sharded: the index names the shards
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return [f"{index.name} is not readable JSON"]
        files += [folder / shard for shard in sorted(shards)]
    return [f"no {f.name}" if not f.is_file() else f"{f.name} is cut short"
            for f in files if not _whole_safetensors(f)]


def _whole_safetensors(path: Path) -> bool:
    """Whether the file is as long as its header says (8-byte size, JSON header, tensors)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                return False
            header = json.loads(fh.read(n))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        return size >= 8 + n + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error):
        return False


def _readable_state(path: Path) -> bool:
    try:
        return "global_step" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def _checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder in ``output_dir``, newest step first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _CHECKPOINT_NAME.match(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def _scan(output_dir: str | os.PathLike) -> tuple[Path | None, list[tuple[Path, list[str]]]]:
    """The newest complete checkpoint, and the incomplete ones newer than it with their problems."""
    skipped = []
    for _, folder in _checkpoints(output_dir):
        problems = checkpoint_problems(folder)
        if not problems:
            return folder, skipped
        skipped.append((folder, problems))
    return None, skipped


def last_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The ``checkpoint-N`` folder of ``output_dir`` with the highest N that is complete.

    Incomplete ones (see :func:`checkpoint_problems`), as a run killed while saving leaves
    them, are skipped with a logged warning that names each; staging folders
    (``.tmp-checkpoint-N``) are never taken. None when there is no complete checkpoint or no
    such folder.
    """
    found, skipped = _scan(output_dir)
    for folder, problems in skipped:
        logger.warning("skipping checkpoint %s: it is incomplete (%s), probably because the run "
                       "stopped while saving it", folder, "; ".join(problems))
    return found


def _remove_unfinished_saves(output_dir: str) -> None:
    """Delete staging folders that a run killed mid-save left in ``output_dir``."""
    for path in Path(output_dir).glob(f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-*"):
        if path.is_dir():
            logger.warning("removing %s: an unfinished checkpoint save of an earlier run", path)
            shutil.rmtree(path, ignore_errors=True)


def _fsync(path: str) -> None:
    """Flush a file or folder to disk (folders: where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a folder on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(written: str, final: str) -> None:
    """Rename the complete checkpoint ``written`` (inside its staging folder) to ``final``."""
    problems = checkpoint_problems(written)
    if problems:
        raise RuntimeError(f"the Trainer saved an incomplete checkpoint in {written} "
                           f"({'; '.join(problems)}); it is not published as {final}.")
    for name in os.listdir(written):
        _fsync(os.path.join(written, name))
    staging = os.path.dirname(written)
    if os.path.exists(final):  # a partial folder of an older, non-atomic save: replaced
        os.replace(final, os.path.join(staging, "replaced"))
    os.replace(written, final)
    _fsync(os.path.dirname(final))
    shutil.rmtree(staging, ignore_errors=True)


def _rotate(output_dir: str, newest: str, best: str | None, limit: int | None) -> None:
    """Delete checkpoints beyond ``limit``, keeping ``newest``, ``best`` and the newest complete.

    Run after ``newest`` is in place, so the previous checkpoint lives until the new one is
    complete. Unlike the Trainer's rotation (by modification time, or by step number where
    times are under a second apart), a partial folder with a higher step never outranks the
    checkpoint just written.
    """
    if not limit or limit <= 0:
        return
    keep = {os.path.abspath(newest)} | ({os.path.abspath(best)} if best else set())
    newest_step = int(_CHECKPOINT_NAME.match(os.path.basename(newest)).group(1))
    for step, folder in _checkpoints(output_dir):
        if len(keep) < limit and step < newest_step and not checkpoint_problems(folder):
            keep.add(os.path.abspath(folder))
    for _, folder in _checkpoints(output_dir):
        if os.path.abspath(folder) not in keep:
            logger.info("deleting checkpoint %s (save_total_limit=%d)", folder, limit)
            shutil.rmtree(folder, ignore_errors=True)


# --- the Trainer subclass -------------------------------------------------------------------

class _Trainer(Trainer):
    """``Trainer`` with an optional class-weighted loss, an optimizer that holds layers that
    are frozen now but unfrozen later, evaluation in dataset order and atomic checkpoints."""

    def __init__(self, *args: Any, class_weights: torch.Tensor | None = None,
                 later_params: Sequence[torch.nn.Parameter] = (), **kwargs: Any) -> None:
        self._staging: str | None = None
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.later_params = list(later_params)
        if class_weights is not None:
            self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by GA

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.class_weights is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = torch.nn.functional.cross_entropy(
            logits.float(), labels, weight=self.class_weights.to(logits.device))
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, *args: Any, **kwargs: Any):
        # Parameters without requires_grad are left out of the optimizer; gradual unfreezing
        # needs them in it. Until unfrozen they get no gradient, and AdamW skips them.
        for p in self.later_params:
            p.requires_grad_(True)
        try:
            return super().create_optimizer(*args, **kwargs)
        finally:
            for p in self.later_params:
                p.requires_grad_(False)

    def _get_output_dir(self, trial: Any) -> str:
        # While a checkpoint is saved, the Trainer's run folder is its staging folder.
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Save as the Trainer does, but into ``.tmp-checkpoint-N/checkpoint-N``; rename it to
        ``checkpoint-N`` once complete, then delete older checkpoints (:func:`_rotate`).

        The Trainer writes weights, optimizer, scheduler, RNG state and trainer_state.json one
        by one into the final folder, so a run killed mid-save left a partial ``checkpoint-N``
        that ``resume`` then picked. Its own rotation runs inside the staging folder (a no-op).
        """
        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, STAGING_PREFIX + name)
        written, final = os.path.join(staging, name), os.path.join(run_dir, name)
        self._staging = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        moved_best = self.state.best_model_checkpoint == written
        if moved_best:  # it names the folder the checkpoint is about to leave
            self.state.best_model_checkpoint = final
        self.accelerator.wait_for_everyone()  # every process has written its part
        if self.args.should_save:
            if moved_best:
                self.state.save_to_json(os.path.join(written, "trainer_state.json"))
            _publish(written, final)
            _rotate(run_dir, final, self.state.best_model_checkpoint, self.args.save_total_limit)

    def _get_eval_sampler(self, eval_dataset):
        # With train_sampling_strategy="group_by_length" the Trainer shuffles evaluation rows
        # too, which would scramble predictions; rows are sorted by length beforehand instead.
        if eval_dataset is None or self.args.world_size > 1:
            return None
        return torch.utils.data.SequentialSampler(eval_dataset)


# --- settings for the Trainer ---------------------------------------------------------------

def _check_runtime(config: TrainConfig, run: Runtime) -> None:
    if run.world_size > 1 and config.unfreeze_schedule:
        raise ValueError("gradual unfreezing (TrainConfig.unfreeze_schedule) does not work in "
                         f"a distributed run (WORLD_SIZE={run.world_size}): DistributedDataParallel "
                         "only syncs parameters trainable at the start. Train in one process, or "
                         "use freeze_layers with unfreeze_schedule=().")
    if run.world_size > 1 and config.output_dir is None and config.save_checkpoints:
        raise ValueError("a distributed run needs TrainConfig.output_dir (a folder all "
                         "processes share) for its checkpoints, or save_checkpoints=False.")


def _resume_point(config: TrainConfig) -> str | None:
    """The checkpoint folder to resume from (None: start afresh); ValueError when there is none."""
    resume = config.resume_from_checkpoint
    if isinstance(resume, str):
        if not os.path.isdir(resume):
            raise ValueError(f"TrainConfig.resume_from_checkpoint={resume!r} is not a folder; pass "
                             "a checkpoint folder (output_dir/checkpoint-N) or True.")
        problems = checkpoint_problems(resume)
        if problems:
            raise ValueError(f"TrainConfig.resume_from_checkpoint={resume!r} is an incomplete "
                             f"checkpoint ({'; '.join(problems)}), probably because the run stopped "
                             "while saving it; pass resume_from_checkpoint=True to take the last "
                             "complete checkpoint of output_dir, or an earlier checkpoint folder.")
        return resume
    if resume is not True:
        return None
    found = last_complete_checkpoint(config.output_dir)
    if found is None:
        raise ValueError(_no_checkpoint_message(config.output_dir))
    logger.info("resuming from %s", found)
    return str(found)


def _no_checkpoint_message(output_dir: str) -> str:
    where = f"no checkpoint to resume from in output_dir={output_dir!r}"
    if not os.path.isdir(output_dir):
        where += " (no such folder)"
    else:
        skipped = [f"{folder.name}: {'; '.join(problems)}" for folder, problems in _scan(output_dir)[1]]
        where += f" (incomplete: {', '.join(skipped)})" if skipped else " (no checkpoint-N folder)"
    return (f"{where}; set output_dir to the folder of the interrupted run (a run writes "
            "output_dir/checkpoint-N at the end of each epoch, with save_checkpoints=True), or set "
            "resume_from_checkpoint=False to start afresh.")


def _logging_steps(config: TrainConfig, n_train: int, world_size: int) -> int:
    if config.logging_steps is not None:
        return config.logging_steps
    batches = math.ceil(n_train / (config.batch_size * max(world_size, 1)))
    steps = max(1, math.ceil(batches / config.gradient_accumulation))
    return max(1, steps // 10)


def _version_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Arguments whose names changed between transformers 4.x and 5.x."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    out: dict[str, Any] = {}
    if "train_sampling_strategy" in names:  # transformers >= 5
        out["train_sampling_strategy"] = "group_by_length" if config.group_by_length else "random"
    else:
        out["group_by_length"] = config.group_by_length
    if "warmup_ratio" in names:
        out["warmup_ratio"] = config.warmup_ratio
    else:  # a float below 1 is a share of the steps
        out["warmup_steps"] = float(config.warmup_ratio)
    return out


def _training_args(config: TrainConfig, run: Runtime, output_dir: str, n_train: int,
                   has_eval: bool) -> TrainingArguments:
    early = has_eval and config.early_stopping_patience > 0
    save = "epoch" if config.save_checkpoints else "no"
    return TrainingArguments(
        output_dir=output_dir, num_train_epochs=float(config.epochs),
        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation, lr_scheduler_type="linear",
        eval_strategy="epoch" if has_eval else "no", save_strategy=save, save_total_limit=1,
        load_best_model_at_end=early and config.save_checkpoints,
        metric_for_best_model=config.early_stopping_metric if has_eval else None,
        greater_is_better=config.metric_greater_is_better if has_eval else None,
        logging_strategy="steps", logging_steps=_logging_steps(config, n_train, run.world_size),
        seed=config.seed, data_seed=config.seed, report_to=[], disable_tqdm=True,
        dataloader_num_workers=config.dataloader_workers, label_names=["labels"],
        optim="adamw_torch_fused" if run.kind == "cuda" else "adamw_torch",
        bf16=run.precision is Precision.BF16, fp16=run.precision is Precision.FP16,
        use_cpu=run.use_cpu, **_version_kwargs(config))


def _callbacks(config: TrainConfig, has_eval: bool, frozen: list[Any], tracker: ProgressAndCancel,
               extra: Sequence[TrainerCallback]) -> list[TrainerCallback]:
    out: list[TrainerCallback] = [tracker, LogEachEpoch()]
    if has_eval and config.early_stopping_patience > 0:
        out.append(EarlyStopping(config.early_stopping_patience, config.early_stopping_min_delta))
        if not config.save_checkpoints:
            out.append(KeepBestInMemory(config.early_stopping_metric,
                                        config.metric_greater_is_better))
    if config.unfreeze_schedule:
        out.append(GradualUnfreeze(config.unfreeze_schedule, frozen))
    if config.report_to:
        from fine_tune.tracking import tracking_callbacks

        out += tracking_callbacks(config.report_to, config.tracking_dir,
                                  config.run_name or f"seed{config.seed}", config.to_dict())
    return out + list(extra)


def _compute_metrics(eval_pred: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits = eval_pred.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    pred = np.asarray(logits).argmax(-1)
    y = np.asarray(eval_pred.label_ids)
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}


def _processing_kwarg(tokenizer: Any) -> dict[str, Any]:
    params = inspect.signature(Trainer.__init__).parameters
    return {"processing_class" if "processing_class" in params else "tokenizer": tokenizer}


# --- results --------------------------------------------------------------------------------

def history_frame(log_history: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The Trainer's ``state.log_history`` as one row per logged point.

    Examples
    --------
    >>> history_frame([{"loss": 0.7, "learning_rate": 1e-5, "epoch": 0.5, "step": 2},
    ...                {"eval_loss": 0.6, "eval_accuracy": 0.8, "epoch": 1.0, "step": 4},
    ...                {"train_runtime": 3.0, "epoch": 1.0, "step": 4}])[["epoch", "train_loss", "eval_loss"]]
       epoch  train_loss  eval_loss
    0    0.5         0.7        NaN
    1    1.0         NaN        0.6
    """
    rows = []
    for entry in log_history:
        if "loss" in entry:
            rows.append({"epoch": entry.get("epoch"), "step": entry.get("step"),
                         "train_loss": entry["loss"], "learning_rate": entry.get("learning_rate")})
        elif "eval_loss" in entry:
            rows.append({k: entry.get(k) for k in HISTORY_COLUMNS if k != "train_loss"})
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS), dtype=float)
    return frame


def _best(history: pd.DataFrame, config: TrainConfig) -> tuple[float | None, float | None]:
    metric = config.early_stopping_metric
    evals = history.dropna(subset=[metric]) if metric in history else history.iloc[:0]
    if evals.empty:
        return None, None
    values = evals[metric].to_numpy()
    i = int(np.argmax(values) if config.metric_greater_is_better else np.argmin(values))
    return float(evals["epoch"].iloc[i]), float(values[i])


def _predict(trainer: Trainer, dataset: Any, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    output = trainer.predict(dataset)
    expected = np.array([f["labels"] for f in dataset.features])
    if output.label_ids is not None and not np.array_equal(np.asarray(output.label_ids), expected):
        raise RuntimeError("the Trainer returned test predictions out of order (this version of "
                           "transformers no longer honours _Trainer._get_eval_sampler); set "
                           "group_by_length=False.")
    logits = output.predictions
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    out = np.empty_like(proba)
    out[perm] = proba
    return out.argmax(axis=1), out


class _Memory:
    """Peak GPU memory, or the growth of the process's peak resident set size, in MiB."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.start = _peak_rss_mb()
        if kind == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float | None:
        if self.kind == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        end = _peak_rss_mb()
        return None if end is None or self.start is None else max(end - self.start, 0.0)


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


@contextlib.contextmanager
def _checkpoint_dir(config: TrainConfig) -> Iterator[str]:
    if config.output_dir is not None:
        os.makedirs(config.output_dir, exist_ok=True)
        yield config.output_dir
        return
    folder = tempfile.mkdtemp(prefix="fine_tune-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the public function --------------------------------------------------------------------

def train_classifier(
    train: pd.DataFrame,
    validation: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
    *,
    config: TrainConfig | None = None,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    save_to: str | os.PathLike | None = None,
) -> TrainResult:
    """Fine-tune a sequence classifier on ``train``; evaluate on ``validation``; predict ``test``.

    Parameters
    ----------
    train, validation, test : pandas.DataFrame
        Columns ``text`` (non-empty strings) and ``label``. Without ``validation`` there is
        no evaluation, so no early stopping and no best epoch.
    config : TrainConfig, optional
        Settings; defaults to ``TrainConfig()`` (the bundled MiniLM, 3 epochs).
    labels : sequence of str, optional
        The classes, in the order of the prediction indices; defaults to the sorted training
        labels. Validation and test labels must be among them.
    progress : callable, optional
        ``progress(fraction, message)`` after every optimizer step (main process only).
    should_stop : callable, optional
        Polled after every step; when it returns True training stops (the result says
        ``cancelled=True`` and has no test predictions).
    callbacks : sequence of transformers.TrainerCallback
        Extra callbacks for the Trainer (they see the model, e.g. to record weights).
    save_to : str or os.PathLike, optional
        A folder to save the final model (the best one when early stopping restored it) and
        its tokenizer to, with ``save_pretrained`` (safetensors; LoRA adapters merged into the
        weights), so :func:`fine_tune.attention.attention_for` can load it offline. Nothing is
        saved when training is cancelled.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        On bad frames (missing columns, empty texts, unknown labels, named by row), settings
        that do not fit this machine, a model that cannot be loaded offline, or no complete
        checkpoint to resume from.
    """
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}.")
    order = check_frames(train, validation, test, labels)
    if validation is not None and validation.empty:
        validation = None
    run = Runtime.plan(config)
    _check_runtime(config, run)
    resume = _resume_point(config)
    with _checkpoint_dir(config) as folder:
        return _train(train, validation, test, config, order, run, folder, progress,
                      should_stop, callbacks, save_to=save_to, resume=resume)


def _train(train, validation, test, config, order, run, folder, progress, should_stop,
           extra, *, save_to=None, resume=None) -> TrainResult:
    memory = _Memory(run.kind)
    set_seed(config.seed)
    tokenizer = load_tokenizer(config)
    model, frozen = prepare_model(config, order)
    max_length = min(config.max_length, int(getattr(tokenizer, "model_max_length", 10**6)))
    train_ds, _ = encode(train, tokenizer, order, max_length)
    val_ds = encode(validation, tokenizer, order, max_length, sort_by_length=True)[0] \
        if validation is not None else None
    tracker = ProgressAndCancel(progress, should_stop)
    weights = None
    codes = np.array([f["labels"] for f in train_ds.features])
    if config.class_weights is ClassWeights.BALANCED:
        weights = torch.tensor(balanced_weights(codes, len(order)), dtype=torch.float32)
    trainer = _Trainer(
        model=model, args=_training_args(config, run, folder, len(train), val_ds is not None),
        train_dataset=train_ds, eval_dataset=val_ds,
        data_collator=DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if run.precision in (Precision.BF16, Precision.FP16) else None),
        compute_metrics=_compute_metrics,
        callbacks=_callbacks(config, val_ds is not None, frozen, tracker, extra),
        class_weights=weights,
        later_params=[p for layer in frozen for p in layer.parameters()] if config.unfreeze_schedule else [],
        **_processing_kwarg(tokenizer))
    trainer.remove_callback(PrinterCallback)  # progress goes through `progress` and logging
    if config.output_dir is not None and trainer.args.should_save:
        _remove_unfinished_saves(folder)
    output = trainer.train(resume_from_checkpoint=resume)
    result = _result(trainer, output, test, tokenizer, order, max_length, config, tracker, memory,
                     prior_loss=prior_loss(codes, len(order), None if weights is None else weights.numpy()))
    result.output_dir = config.output_dir
    if save_to is not None and not result.cancelled:
        _save_model(trainer, tokenizer, save_to)
        _card(save_to, result, config, train, test, order)
    del trainer, model
    _release(run)
    if progress is not None and not result.cancelled:
        progress(1.0, f"done: {result.diagnosis.summary}")
    return result


def prior_loss(codes: np.ndarray, n_labels: int, weights: np.ndarray | None = None) -> float:
    """The training loss of a model that learned nothing but the class shares.

    The (weighted) cross-entropy of a constant prediction :math:`q` is
    :math:`\\sum_c a_c (-\\ln q_c)` with :math:`a_c \\propto n_c w_c`; it is smallest at
    :math:`q = a`, where it equals the entropy :math:`-\\sum_c a_c \\ln a_c` (the class
    shares' entropy without weights, :math:`\\ln K` with balanced weights).

    Examples
    --------
    >>> round(prior_loss(np.array([0, 0, 0, 1]), 2), 4)
    0.5623
    >>> round(prior_loss(np.array([0, 0, 0, 1]), 2, np.array([2 / 3, 2.0])), 4)   # ln 2
    0.6931
    """
    counts = np.bincount(codes, minlength=n_labels).astype(float)
    mass = counts * (weights if weights is not None else 1.0)
    a = mass[mass > 0] / mass.sum()
    return float(-(a * np.log(a)).sum())


def _result(trainer, output, test, tokenizer, order, max_length, config, tracker,
            memory, *, prior_loss: float | None = None) -> TrainResult:
    history = history_frame(trainer.state.log_history)
    best_epoch, best_metric = _best(history, config)
    pred = proba = None
    if test is not None and not tracker.cancelled:
        if test.empty:
            pred, proba = np.zeros(0, dtype=int), np.zeros((0, len(order)))
        else:
            test_ds, perm = encode(test, tokenizer, order, max_length, sort_by_length=True)
            pred, proba = _predict(trainer, test_ds, perm)
    restored = bool(trainer.args.metric_for_best_model and config.early_stopping_patience > 0)
    trainable, total = trainable_parameter_count(trainer.model)
    return TrainResult(
        labels=list(order), test_pred=pred, test_proba=proba, history=history,
        best_epoch=best_epoch, best_metric=best_metric,
        train_seconds=float(output.metrics.get("train_runtime", float("nan"))),
        train_samples_per_second=float(output.metrics.get("train_samples_per_second", float("nan"))),
        peak_memory_mb=memory.peak_mb(),
        diagnosis=diagnose(history, metric=config.early_stopping_metric, best_restored=restored,
                           prior_loss=prior_loss),
        config=config, device=str(trainer.args.device), output_dir=None,
        cancelled=tracker.cancelled, trainable_params=trainable, total_params=total)


def _card(folder: str | os.PathLike, result: TrainResult, config: TrainConfig, train: pd.DataFrame,
          test: pd.DataFrame | None, order: list[str]) -> None:
    """The saved model's card (README.md): labels, settings, rows and what it scored."""
    from fine_tune.model_card import write_model_card

    if not os.path.isdir(folder):  # not the main process of a distributed run: nothing saved
        return
    scores: dict[str, Any] = {"best epoch": result.best_epoch, "loss curves": result.diagnosis.summary}
    if test is not None and result.test_pred is not None and "label" in test.columns:
        predicted = np.asarray(order, dtype=object)[np.asarray(result.test_pred, dtype=int)]
        scores["test accuracy"] = round(float(np.mean(predicted == test["label"].astype(str)
                                                      .to_numpy())), 4)
        scores["test rows"] = len(test)
    write_model_card(folder, labels=order, config=config.to_dict(), train_rows=len(train),
                     pairs="text_pair" in train.columns, scores=scores)


def _save_model(trainer: Trainer, tokenizer: Any, folder: str | os.PathLike) -> None:
    """Save the trained model (LoRA merged in) and tokenizer with ``save_pretrained``."""
    if not trainer.args.should_save:  # not the main process of a distributed run
        return
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # peft: a full model loads without peft
        model = model.merge_and_unload()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)  # safetensors (transformers >= 5 writes nothing else)
    tokenizer.save_pretrained(folder)
    logger.info("saved the model and tokenizer to %s", folder)


def _release(run: Runtime) -> None:
    gc.collect()
    if run.kind == "cuda":
        torch.cuda.empty_cache()
