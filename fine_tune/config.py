"""Training settings: one dataclass, checked on creation, with enums for the choices.

:class:`TrainConfig` holds every setting of :func:`fine_tune.train.train_classifier` and
:func:`fine_tune.lr_finder.lr_range_test` (in the style of SetFit's ``TrainingArguments``):
``__post_init__`` checks each value and raises a :class:`ValueError` that names the bad value
and the fix, so a bad setting fails at once, not an hour into training.

Examples
--------
>>> cfg = TrainConfig(epochs=2, freeze_layers=4, unfreeze_schedule=[(1, 2)])
>>> cfg.unfreeze_schedule
((1, 2),)
>>> cfg.resolved_precision("cpu")
<Precision.FP32: 'fp32'>
>>> TrainConfig(precision="bf16").precision
<Precision.BF16: 'bf16'>
>>> TrainConfig(early_stopping_metric="macro_f1").metric_greater_is_better
True
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "REPORT_TO", "ClassWeights", "Precision", "TrainConfig", "jsonable"]

#: Metrics that early stopping and best-checkpoint selection can watch, and whether higher is better.
METRICS = {"eval_loss": False, "eval_accuracy": True, "eval_macro_f1": True}
#: Values of :attr:`TrainConfig.device` (None lets the Trainer choose).
DEVICES = ("cpu", "cuda", "mps")


class Precision(str, enum.Enum):
    """Floating-point precision of training.

    ``AUTO`` resolves to ``BF16`` on a CUDA GPU that supports it, ``FP16`` on other CUDA
    GPUs and ``FP32`` elsewhere (see :meth:`TrainConfig.resolved_precision`).
    """

    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"

    def __str__(self) -> str:
        return self.value


class ClassWeights(str, enum.Enum):
    """How training examples are weighted in the loss.

    ``BALANCED`` weights class ``c`` by ``n / (k * n_c)`` (as scikit-learn's
    ``class_weight="balanced"``): ``n`` training rows, ``k`` classes, ``n_c`` rows of ``c``.
    """

    NONE = "none"
    BALANCED = "balanced"

    def __str__(self) -> str:
        return self.value


def _fail(name: str, value: Any, need: str) -> None:
    raise ValueError(f"TrainConfig.{name} must be {need}; got {value!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _coerce_enum(enum_type: type[enum.Enum], name: str, value: Any) -> enum.Enum:
    try:
        return enum_type(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_type)
        raise ValueError(f"TrainConfig.{name} must be a {enum_type.__name__} or one of "
                         f"{choices}; got {value!r}.") from None


#: The experiment trackers ``TrainConfig.report_to`` may name (:mod:`fine_tune.tracking`).
REPORT_TO = ("mlflow", "tensorboard")


@dataclass
class TrainConfig:
    """Settings of one fine-tuning run.

    Parameters
    ----------
    model : str, optional
        Local model folder or Hugging Face model id (from the local cache unless
        ``CURATION_ALLOW_DOWNLOAD=1``); None is the bundled all-MiniLM-L6-v2.
    max_length : int
        Word pieces kept per text (longer texts are truncated; batches are padded only to
        their longest text).
    epochs : int or float
        Passes over the training data (a fraction stops part-way).
    learning_rate : float
        Peak learning rate (after warm-up, then linear decay). 0 trains nothing (a check).
    batch_size, eval_batch_size : int
        Rows per device and step in training and evaluation.
    gradient_accumulation : int
        Steps whose gradients are summed before each update (effective batch
        ``batch_size * gradient_accumulation * processes``).
    precision : Precision
        ``AUTO`` (default), ``BF16``, ``FP16`` or ``FP32``; strings such as ``"bf16"`` are accepted.
    early_stopping_patience : int
        Stop after this many evaluations (epochs) without improvement; 0 turns it off.
        Needs a validation set; the best epoch's weights are restored at the end.
    early_stopping_min_delta : float
        Smallest change of the metric that counts as an improvement.
    early_stopping_metric : str
        ``"eval_loss"`` (lower is better), ``"eval_accuracy"`` or ``"eval_macro_f1"``
        (higher is better); the ``eval_`` prefix may be left out.
    warmup_ratio : float
        Share of the update steps spent warming the learning rate up from 0, in [0, 1).
    weight_decay : float
        AdamW weight decay (not applied to biases and LayerNorm weights).
    class_weights : ClassWeights
        ``NONE`` or ``BALANCED`` (a weighted cross-entropy for unbalanced labels).
    freeze_embeddings : bool
        Keep the embedding layer fixed.
    freeze_layers : int
        Keep the lowest N encoder layers fixed.
    unfreeze_schedule : tuple of (int, int)
        Gradual unfreezing: ``(epoch, n)`` unfreezes, when ``epoch`` epochs are done, the
        top ``n`` layers still frozen, e.g. ``((1, 2), (2, 2))``. Needs ``freeze_layers``.
    lora : bool
        Train LoRA adapters (peft) and the classification head instead of all weights.
    lora_r, lora_alpha, lora_dropout : int, float, float
        LoRA rank, scaling and dropout.
    lora_target_modules : tuple of str, optional
        Modules that get adapters; None lets peft choose for the model type
        (``query`` and ``value`` for BERT).
    seed : int
        Seeds model initialisation, shuffling and dropout (``seed`` and ``data_seed``).
    group_by_length : bool
        Batch texts of similar length together (less padding, faster).
    save_checkpoints : bool
        Write a checkpoint each epoch, as ``output_dir/checkpoint-N`` (N: optimizer steps so
        far), renamed into place only once complete (needed to resume; the best is restored
        from it).
        Without checkpoints the best weights are kept in memory instead.
    output_dir : str, optional
        Where checkpoints go; None uses a temporary folder removed after training.
    resume_from_checkpoint : bool or str
        True resumes from the last complete checkpoint in ``output_dir`` (a partial one, left
        by a run killed while saving, is skipped with a warning); a path resumes from that
        checkpoint folder, which must be complete. Checkpoints are written atomically.
    device : str, optional
        None (a CUDA GPU when there is one, else the CPU; the launcher's choice under
        ``torchrun``/``accelerate launch``), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    dataloader_workers : int
        Worker processes that load batches (0: in the main process).
    logging_steps : int, optional
        Steps between training-loss log points; None logs about 10 times an epoch.
    report_to : tuple of {"mlflow", "tensorboard"}
        Experiment tracking, beside the run's own history: ``mlflow`` logs the settings and every
        logged loss and metric to a local MLflow store, ``tracking_dir/mlflow.db`` (experiment
        ``curation``; ``mlflow ui --backend-store-uri sqlite:///<that file>``), ``tensorboard``
        writes event files to ``tracking_dir/tensorboard/<run name>``. Nothing leaves the machine.
    tracking_dir : str, optional
        Where the trackers write; required with ``report_to`` (a retrain-and-compare job uses
        its folder's ``tracking``).
    run_name : str, optional
        The run's name in the trackers (default ``seed<seed>``; retrain-and-compare:
        ``<side>-seed<seed>``).
    """

    model: str | None = None
    max_length: int = 128
    epochs: float = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation: int = 1
    precision: Precision = Precision.AUTO
    early_stopping_patience: int = 2
    early_stopping_min_delta: float = 0.0
    early_stopping_metric: str = "eval_loss"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weights: ClassWeights = ClassWeights.NONE
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    unfreeze_schedule: tuple[tuple[int, int], ...] = ()
    lora: bool = False
    lora_r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] | None = None
    seed: int = 0
    group_by_length: bool = True
    save_checkpoints: bool = True
    output_dir: str | None = None
    resume_from_checkpoint: bool | str = False
    device: str | None = None
    dataloader_workers: int = 0
    logging_steps: int | None = None
    report_to: tuple[str, ...] = ()
    tracking_dir: str | None = None
    run_name: str | None = None

    def __post_init__(self) -> None:
        self.precision = _coerce_enum(Precision, "precision", self.precision)
        self.class_weights = _coerce_enum(ClassWeights, "class_weights", self.class_weights)
        self._check_model_and_sizes()
        self._check_optimisation()
        self._check_early_stopping()
        self._check_freezing()
        self._check_lora()
        self._check_run()

    # --- checks -------------------------------------------------------------------------

    def _check_model_and_sizes(self) -> None:
        if isinstance(self.model, os.PathLike):
            self.model = os.fspath(self.model)
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            _fail("model", self.model, "None (the bundled MiniLM), a local model folder or a "
                  "Hugging Face model id")
        for name in ("max_length", "batch_size", "eval_batch_size", "gradient_accumulation"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                _fail(name, getattr(self, name), "a positive integer")
        if self.max_length < 2:
            _fail("max_length", self.max_length, "at least 2 (room for [CLS] and [SEP])")

    def _check_optimisation(self) -> None:
        if not _is_real(self.epochs) or self.epochs <= 0:
            _fail("epochs", self.epochs, "a positive number such as 3")
        if not _is_real(self.learning_rate) or not 0 <= self.learning_rate < 1:
            _fail("learning_rate", self.learning_rate, "a number in [0, 1), typically 1e-5 to 1e-4")
        if not _is_real(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            _fail("warmup_ratio", self.warmup_ratio, "a share in [0, 1) such as 0.1")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            _fail("weight_decay", self.weight_decay, "a number >= 0 such as 0.01")

    def _check_early_stopping(self) -> None:
        if not _is_int(self.early_stopping_patience) or self.early_stopping_patience < 0:
            _fail("early_stopping_patience", self.early_stopping_patience,
                  "an integer >= 0 (0 turns early stopping off)")
        if not _is_real(self.early_stopping_min_delta) or self.early_stopping_min_delta < 0:
            _fail("early_stopping_min_delta", self.early_stopping_min_delta, "a number >= 0")
        metric = self.early_stopping_metric
        if isinstance(metric, str) and not metric.startswith("eval_"):
            metric = f"eval_{metric}"
        if metric not in METRICS:
            _fail("early_stopping_metric", self.early_stopping_metric,
                  "one of " + ", ".join(repr(m) for m in METRICS))
        self.early_stopping_metric = metric

    def _check_freezing(self) -> None:
        if not isinstance(self.freeze_embeddings, bool):
            _fail("freeze_embeddings", self.freeze_embeddings, "True or False")
        if not _is_int(self.freeze_layers) or self.freeze_layers < 0:
            _fail("freeze_layers", self.freeze_layers, "an integer >= 0 (0 freezes no layer)")
        schedule = self.unfreeze_schedule
        if schedule is None or isinstance(schedule, (str, bytes)):
            _fail("unfreeze_schedule", schedule, "a sequence of (epoch, n_layers) pairs, e.g. ((1, 2),)")
        try:
            pairs = tuple((a, b) for a, b in schedule)
        except (TypeError, ValueError):
            _fail("unfreeze_schedule", schedule, "a sequence of (epoch, n_layers) pairs, e.g. ((1, 2),)")
        for epoch, n in pairs:
            if not (_is_int(epoch) and _is_int(n) and epoch >= 1 and n >= 1):
                _fail("unfreeze_schedule", schedule, "pairs of integers (epoch >= 1, n_layers >= 1)")
        epochs = [e for e, _ in pairs]
        if epochs != sorted(set(epochs)):
            _fail("unfreeze_schedule", schedule, "ordered by strictly increasing epoch")
        if pairs and sum(n for _, n in pairs) > self.freeze_layers:
            _fail("unfreeze_schedule", schedule, f"unfreezing at most freeze_layers="
                  f"{self.freeze_layers} layers in all; raise freeze_layers or unfreeze fewer")
        if pairs and epochs[-1] >= self.epochs:
            _fail("unfreeze_schedule", schedule, f"at epochs before the last (epochs={self.epochs}); "
                  "a step at or after the end would never happen")
        self.unfreeze_schedule = tuple((int(e), int(n)) for e, n in pairs)

    def _check_lora(self) -> None:
        if not isinstance(self.lora, bool):
            _fail("lora", self.lora, "True or False")
        if not _is_int(self.lora_r) or self.lora_r < 1:
            _fail("lora_r", self.lora_r, "a positive integer such as 8")
        if not _is_real(self.lora_alpha) or self.lora_alpha <= 0:
            _fail("lora_alpha", self.lora_alpha, "a positive number such as 16")
        if not _is_real(self.lora_dropout) or not 0 <= self.lora_dropout < 1:
            _fail("lora_dropout", self.lora_dropout, "a probability in [0, 1)")
        targets = self.lora_target_modules
        if isinstance(targets, str):
            targets = (targets,)
        if targets is not None:
            targets = tuple(targets)
            if not targets or not all(isinstance(t, str) and t for t in targets):
                _fail("lora_target_modules", self.lora_target_modules,
                      "None (peft's choice) or module names such as ('query', 'value')")
        self.lora_target_modules = targets
        if self.lora and (self.freeze_layers or self.freeze_embeddings or self.unfreeze_schedule):
            raise ValueError("TrainConfig: lora=True already keeps every base weight fixed; set "
                             "freeze_layers=0, freeze_embeddings=False and unfreeze_schedule=() "
                             f"(got {self.freeze_layers}, {self.freeze_embeddings}, "
                             f"{self.unfreeze_schedule!r}).")

    def _check_run(self) -> None:
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            _fail("seed", self.seed, "an integer in [0, 2**32)")
        for name in ("group_by_length", "save_checkpoints"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "True or False")
        if self.output_dir is not None:
            if not isinstance(self.output_dir, (str, os.PathLike)) or not str(self.output_dir).strip():
                _fail("output_dir", self.output_dir, "None (a temporary folder) or a folder path")
            self.output_dir = os.fspath(self.output_dir)
        self._check_resume()
        if self.device is not None and self.device not in DEVICES:
            _fail("device", self.device, "None (automatic) or one of " + ", ".join(map(repr, DEVICES))
                  + " (pick one GPU with the CUDA_VISIBLE_DEVICES environment variable)")
        if not _is_int(self.dataloader_workers) or self.dataloader_workers < 0:
            _fail("dataloader_workers", self.dataloader_workers, "an integer >= 0")
        if self.logging_steps is not None and (not _is_int(self.logging_steps) or self.logging_steps < 1):
            _fail("logging_steps", self.logging_steps, "None (about 10 per epoch) or a positive integer")
        self._check_tracking()

    def _check_tracking(self) -> None:
        report = self.report_to
        if isinstance(report, str):
            report = (report,) if report not in ("", "none") else ()
        if not isinstance(report, (list, tuple)) or any(r not in REPORT_TO for r in report):
            _fail("report_to", self.report_to, "() or a tuple of " + ", ".join(map(repr, REPORT_TO)))
        self.report_to = tuple(dict.fromkeys(report))
        if isinstance(self.tracking_dir, os.PathLike):
            self.tracking_dir = os.fspath(self.tracking_dir)
        if self.tracking_dir is not None and (not isinstance(self.tracking_dir, str)
                                              or not self.tracking_dir.strip()):
            _fail("tracking_dir", self.tracking_dir, "None or a folder path")
        if self.run_name is not None and (not isinstance(self.run_name, str)
                                          or not self.run_name.strip()):
            _fail("run_name", self.run_name, "None or a short name")
        if self.report_to and self.tracking_dir is None:
            raise ValueError(f"TrainConfig.report_to={list(self.report_to)} writes to "
                             "tracking_dir, which is None; set tracking_dir to a folder (the "
                             "trackers' local stores go there).")

    def _check_resume(self) -> None:
        resume = self.resume_from_checkpoint
        if isinstance(resume, os.PathLike):
            resume = self.resume_from_checkpoint = os.fspath(resume)
        if not isinstance(resume, (bool, str)) or resume == "":
            _fail("resume_from_checkpoint", resume, "False, True (the latest checkpoint in "
                  "output_dir) or a checkpoint folder")
        if resume is True and self.output_dir is None:
            raise ValueError("TrainConfig.resume_from_checkpoint=True looks for the latest "
                             "checkpoint in output_dir, which is None; set output_dir to the "
                             "folder of the interrupted run, or pass the checkpoint folder.")
        if resume and not self.save_checkpoints:
            raise ValueError("TrainConfig.resume_from_checkpoint needs save_checkpoints=True "
                             "(a resumed run keeps writing checkpoints); got save_checkpoints=False.")

    # --- derived values -------------------------------------------------------------------

    @property
    def metric_greater_is_better(self) -> bool:
        """Whether a higher :attr:`early_stopping_metric` is better (False for the loss)."""
        return METRICS[self.early_stopping_metric]

    def resolved_precision(self, device: str | None) -> Precision:
        """The precision to train in on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``, ...).

        ``AUTO`` becomes ``BF16`` on a CUDA GPU that supports it, ``FP16`` on other CUDA GPUs
        and ``FP32`` elsewhere.

        Raises
        ------
        ValueError
            ``FP16`` off CUDA, or ``BF16`` on a CUDA GPU without bf16 support.
        """
        on_cuda = str(device or "").startswith("cuda")
        if self.precision is Precision.AUTO:
            if not on_cuda:
                return Precision.FP32
            return Precision.BF16 if _cuda_bf16_supported() else Precision.FP16
        if self.precision is Precision.FP16 and not on_cuda:
            raise ValueError(f"TrainConfig.precision=fp16 needs a CUDA GPU, but the device is "
                             f"{device!r}; use precision='auto' or 'fp32' (or 'bf16' on a CPU "
                             "that supports it).")
        if self.precision is Precision.BF16 and on_cuda and not _cuda_bf16_supported():
            raise ValueError("TrainConfig.precision=bf16 is not supported by this GPU; use "
                             "precision='auto' (fp16 here) or 'fp32'.")
        return self.precision

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (enums as their string values, tuples as lists).

        Examples
        --------
        >>> d = TrainConfig(unfreeze_schedule=((1, 1),), freeze_layers=1, epochs=2).to_dict()
        >>> d["precision"], d["unfreeze_schedule"], d["model"]
        ('auto', [[1, 1]], None)
        >>> TrainConfig(**{**d, "unfreeze_schedule": d["unfreeze_schedule"]}) == TrainConfig(
        ...     unfreeze_schedule=((1, 1),), freeze_layers=1, epochs=2)
        True
        """
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def jsonable(value: Any) -> Any:
    """Plain Python values: numpy scalars and arrays converted, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # a numpy array or scalar
        return jsonable(value.tolist())
    if hasattr(value, "value") and hasattr(type(value), "__members__"):  # an Enum
        return jsonable(value.value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _cuda_bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
