"""Loading the backbone offline, freezing layers and adding LoRA adapters.

Shared by :mod:`fine_tune.train` and :mod:`fine_tune.lr_finder`, so both build the same
model from the same :class:`~fine_tune.config.TrainConfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from curation.models import (
    DEFAULT_MODEL,
    default_model_path,
    load_named,
    pickle_only_hint,
)
from fine_tune.config import TrainConfig

if TYPE_CHECKING:
    import torch

__all__ = ["encoder_layers", "load_encoder", "load_model", "load_tokenizer", "model_name",
           "prepare_model", "trainable_parameter_count"]

logger = logging.getLogger(__name__)

#: Where the stack of encoder layers lives under ``model.base_model``, by architecture.
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")
#: LoRA targets for model types peft has no default for.
_LORA_TARGETS = {"distilbert": ["q_lin", "v_lin"]}
#: Classification-head modules that stay fully trainable under LoRA.
_HEAD_MODULES = ("pre_classifier", "classifier", "score")


def model_name(config: TrainConfig) -> str:
    """``config.model``, or the bundled MiniLM's name when it is None."""
    return config.model if config.model is not None else DEFAULT_MODEL


def _resolve_path(config: TrainConfig) -> str:
    return default_model_path() if config.model is None else config.model


def _offline_error(kind: str, config: TrainConfig, err: Exception) -> ValueError:
    return ValueError(
        f"cannot load the {kind} of {model_name(config)!r}: {err}. {pickle_only_hint(config.model)}"
        "The model must be a local "
        "folder (saved with save_pretrained) or already in the Hugging Face cache; download it "
        "elsewhere and pass its folder as TrainConfig.model, set CURATION_ALLOW_DOWNLOAD=1 to "
        "allow downloading, or use model=None (the bundled all-MiniLM-L6-v2).")


def load_model(config: TrainConfig, num_labels: int, *,
               labels: Sequence[str] | None = None) -> torch.nn.Module:
    """A sequence-classification model with a fresh ``num_labels``-way head, loaded offline.

    Parameters
    ----------
    config : TrainConfig
        ``config.model`` names the backbone (None: the bundled all-MiniLM-L6-v2).
    num_labels : int
        Number of classes.
    labels : sequence of str, optional
        Class names, stored as the model's ``id2label``.

    Raises
    ------
    ValueError
        When the model is neither a local folder nor in the local cache (the message says
        how to fix it).
    """
    from transformers import AutoModelForSequenceClassification

    names = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(num_labels)]

    def loader(path: str, device: Any = None, **kwargs: Any) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True,
            use_safetensors=True, **kwargs)  # never unpickle a .bin checkpoint

    try:
        return load_named(loader, _resolve_path(config), None)
    except Exception as err:  # whatever the loader raised, answer with the fix
        raise _offline_error("model", config, err) from err


def load_encoder(config: TrainConfig) -> torch.nn.Module:
    """The bare encoder (``AutoModel``, no classification head), loaded offline like
    :func:`load_model`.

    Used where the heads are built separately (:mod:`fine_tune.multitask`,
    :mod:`fine_tune.continual`). Only safetensors weights are read.

    Raises
    ------
    ValueError
        When the model is neither a local folder nor in the local cache (the message says
        how to fix it).
    """
    from transformers import AutoModel

    def loader(path: str, device: Any = None, **kwargs: Any) -> Any:
        return AutoModel.from_pretrained(path, use_safetensors=True, **kwargs)

    try:
        return load_named(loader, _resolve_path(config), None)
    except Exception as err:  # whatever the loader raised, answer with the fix
        raise _offline_error("encoder", config, err) from err


def load_tokenizer(config: TrainConfig) -> Any:
    """The model's (fast) tokenizer, loaded offline like :func:`load_model`."""
    from transformers import AutoTokenizer

    def loader(path: str, device: Any = None, **kwargs: Any) -> Any:
        return AutoTokenizer.from_pretrained(path, **kwargs)

    try:
        return load_named(loader, _resolve_path(config), None)
    except Exception as err:
        raise _offline_error("tokenizer", config, err) from err


def encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer layers, lowest first (BERT, RoBERTa, DistilBERT, ...).

    Raises
    ------
    ValueError
        When no layer stack is found where these architectures keep it.
    """
    import torch

    base = getattr(model, "base_model", model)
    for path in _LAYER_PATHS:
        node: Any = base
        for part in path.split("."):
            node = getattr(node, part, None)
        if isinstance(node, torch.nn.ModuleList) and len(node):
            return node
    raise ValueError(
        f"cannot find the encoder layers of a {type(model).__name__} (looked for "
        f"base_model.{{{', '.join(_LAYER_PATHS)}}}); freezing layers works for BERT-, RoBERTa- "
        "and DistilBERT-like models: set freeze_layers=0 and unfreeze_schedule=() for this one.")


def _embeddings(model: torch.nn.Module) -> torch.nn.Module:
    base = getattr(model, "base_model", model)
    found = getattr(base, "embeddings", None)
    return found if found is not None else model.get_input_embeddings()


def _set_trainable(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def freeze(model: torch.nn.Module, config: TrainConfig) -> list[torch.nn.Module]:
    """Freeze the embeddings and lowest layers as ``config`` says; returns the frozen layers.

    The list is lowest first, so gradual unfreezing takes layers from its end.
    """
    frozen: list[torch.nn.Module] = []
    if config.freeze_embeddings:
        _set_trainable(_embeddings(model), False)
    if config.freeze_layers:
        layers = encoder_layers(model)
        if config.freeze_layers > len(layers):
            raise ValueError(f"TrainConfig.freeze_layers={config.freeze_layers}, but "
                             f"{model_name(config)!r} has only {len(layers)} encoder layers; "
                             f"freeze at most {len(layers)}.")
        frozen = list(layers[: config.freeze_layers])
        for layer in frozen:
            _set_trainable(layer, False)
    return frozen


def add_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters; only adapters and the head stay trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets = config.lora_target_modules
    if targets is None:
        targets = _LORA_TARGETS.get(getattr(model.config, "model_type", ""))
    heads = [name for name in _HEAD_MODULES if getattr(model, name, None) is not None]
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=list(targets) if targets is not None else None,
                      modules_to_save=heads or None)
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        raise ValueError(f"cannot add LoRA adapters to {model_name(config)!r}: {err}. Set "
                         "TrainConfig.lora_target_modules to the names of its attention "
                         "projections (for BERT: ('query', 'value')).") from err


def prepare_model(config: TrainConfig, labels: Sequence[str]) -> tuple[Any, list[Any]]:
    """Load the model for ``labels`` and apply the freezing or LoRA settings.

    Returns
    -------
    model, frozen_layers
        ``frozen_layers`` lists the frozen encoder layers, lowest first (empty with LoRA).
    """
    model = load_model(config, len(labels), labels=labels)
    if config.lora:
        return add_lora(model, config), []
    return model, freeze(model, config)


def trainable_parameter_count(model: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
