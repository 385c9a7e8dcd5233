"""What a fine-tuned classifier attends to: attention per layer and head, and attention rollout.

:func:`attention_for` loads a model saved with ``save_pretrained`` (by
``train_classifier(save_to=...)`` or a retrain-and-compare job, which keeps its seed-0 models in
``<job folder>/models/{before,after}``), runs one text through it with the eager attention
implementation and returns an :class:`Attention`: the word pieces, the attention weights of
every layer and head, the predicted label and the class probabilities.

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers") follows
attention through the layers: average each layer's heads, add the identity (the residual
connection), renormalise every row to sum to 1, and multiply the layers, last on the left:

.. math:: \\tilde A_l = \\operatorname{rownorm}(\\bar A_l + I), \\qquad
          R = \\tilde A_L \\tilde A_{L-1} \\cdots \\tilde A_1 .

Row 0 of :math:`R` (the ``[CLS]`` token, which the classification head reads) says how much
each input token flows into the prediction. Attention is not an explanation of the decision
(Jain & Wallace 2019), but it shows which tokens the model mixed into ``[CLS]``.

:func:`attention_chart` draws it with Altair: a token-by-token heatmap of one layer and head
(or the rollout) and a bar chart of the ``[CLS]`` row over the tokens.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Attention", "attention_chart", "attention_for", "attention_rollout", "clear_cache"]

logger = logging.getLogger(__name__)

#: Loaded models kept at once (the app may show the before and the after model of a job).
_CACHE_SIZE = 4
#: (resolved folder, weights mtime) -> (model, tokenizer, lock held while it runs).
_MODELS: OrderedDict[tuple[str, float], tuple[Any, Any, threading.Lock]] = OrderedDict()
_MODELS_LOCK = threading.Lock()


# --- rollout --------------------------------------------------------------------------------

def attention_rollout(attentions: np.ndarray) -> np.ndarray:
    """Attention rollout of a ``(layers, heads, seq, seq)`` array: a ``(seq, seq)`` matrix.

    Each layer's heads are averaged, the identity is added and the rows renormalised, then
    the layers are multiplied from the first (rightmost) to the last (leftmost). Every row of
    the result sums to 1.

    Examples
    --------
    >>> a = np.array([[[[1.0, 0.0], [0.5, 0.5]]]])  # one layer, one head, two tokens
    >>> attention_rollout(a)
    array([[1.  , 0.  ],
           [0.25, 0.75]])
    """
    att = np.asarray(attentions, dtype=np.float64)
    if att.ndim != 4 or att.shape[2] != att.shape[3] or 0 in att.shape:
        raise ValueError(f"attentions must have shape (layers, heads, seq, seq) with no empty "
                         f"axis; got {att.shape}. Pass Attention.attentions.")
    seq = att.shape[-1]
    rollout = np.eye(seq)
    for layer in att:
        mixed = layer.mean(axis=0) + np.eye(seq)
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout


# --- the result -----------------------------------------------------------------------------

@dataclass
class Attention:
    """One text through a fine-tuned classifier, with its attention weights.

    Attributes
    ----------
    text : str
        The input.
    tokens : list of str
        The word pieces, special tokens included (``[CLS]``, ``[SEP]``, ...).
    special : list of bool
        True where ``tokens[i]`` is a special token.
    attentions : numpy.ndarray
        Shape ``(layers, heads, seq, seq)``; ``attentions[l, h, i, j]`` is how much token
        ``i`` attends to token ``j`` in layer ``l``, head ``h`` (each row sums to 1).
    labels : list of str
        The classes, in the order of ``probabilities``.
    probabilities : numpy.ndarray
        Softmax of the logits, shape ``(n_labels,)``.
    predicted : str
        The label with the highest probability.
    model_dir : str
        The model folder.
    """

    text: str
    tokens: list[str]
    special: list[bool]
    attentions: np.ndarray
    labels: list[str]
    probabilities: np.ndarray
    predicted: str
    model_dir: str

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.attentions.shape[1])

    def rollout(self) -> np.ndarray:
        """Attention rollout, ``(seq, seq)``; row 0 is the ``[CLS]`` token's (see the module)."""
        return attention_rollout(self.attentions)

    def matrix(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """A ``(seq, seq)`` matrix: the rollout (``layer=None``), a layer's mean over heads
        (``head=None``) or one head. Layers and heads count from 0."""
        if layer is None:
            if head is not None:
                raise ValueError(f"head={head} needs a layer; pass layer= too, or neither for "
                                 "the rollout.")
            return self.rollout()
        self._check_index("layer", layer, self.n_layers)
        if head is None:
            return self.attentions[layer].mean(axis=0)
        self._check_index("head", head, self.n_heads)
        return self.attentions[layer, head]

    @staticmethod
    def _check_index(what: str, value: Any, n: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
            raise ValueError(f"{what}={value!r} is out of range: this model has {n} {what}s, "
                             f"numbered 0 to {n - 1}.")

    def top_tokens(self, k: int = 10, *, layer: int | None = None,
                   head: int | None = None) -> list[tuple[int, str, float]]:
        """The ``k`` non-special tokens with the highest ``[CLS]``-row weight, highest first:
        ``(position, token, weight)``; by rollout unless ``layer`` (and ``head``) is given."""
        row = self.matrix(layer, head)[0]
        order = [i for i in np.argsort(-row, kind="stable") if not self.special[i]]
        return [(int(i), self.tokens[i], float(row[i])) for i in order[:k]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: tokens, prediction, attentions, rollout and its [CLS] row."""
        rollout = self.rollout()
        return {"model_dir": self.model_dir, "text": self.text, "tokens": list(self.tokens),
                "special": list(self.special), "labels": list(self.labels),
                "probabilities": [float(p) for p in self.probabilities],
                "predicted": self.predicted, "shape": list(self.attentions.shape),
                "attentions": self.attentions.tolist(), "rollout": rollout.tolist(),
                "cls_rollout": rollout[0].tolist()}


# --- loading --------------------------------------------------------------------------------

def _check_folder(model_dir: str | os.PathLike) -> tuple[Path, float]:
    """The resolved folder and its weights' modification time; ValueError naming the fix."""
    if model_dir is None or str(model_dir).strip() == "":
        raise ValueError("model_dir is empty; pass the folder of a model saved with "
                         "train_classifier(save_to=...) or run Retrain and compare, which keeps "
                         "its models in <job folder>/models/after.")
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"no model folder {str(folder)!r}: it does not exist. Train one with "
                         "train_classifier(save_to=...) or run Retrain and compare (its models "
                         "are kept in <job folder>/models/before and /after).")
    weights = sorted(folder.glob("*.safetensors"))
    if not (folder / "config.json").is_file() or not weights:
        from curation.models import pickle_only_hint

        raise ValueError(f"{str(folder)!r} holds no saved model (it needs config.json and "
                         f"model.safetensors). {pickle_only_hint(str(folder))}Save one with "
                         "train_classifier(save_to=...) or model.save_pretrained(folder).")
    return folder.resolve(), max(w.stat().st_mtime for w in weights)


def _load(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True,  # never unpickle
            attn_implementation="eager")  # the fused kernels return no attention weights
    except Exception as err:  # whatever transformers raised, answer with the fix
        raise ValueError(f"cannot load the model in {str(folder)!r}: {err}. It must be a "
                         "sequence classifier saved with save_pretrained (safetensors) with its "
                         "tokenizer; train_classifier(save_to=...) saves both.") from err
    model.eval()
    return model, tokenizer


def _cached(folder: Path, stamp: float) -> tuple[Any, Any, threading.Lock]:
    key = (str(folder), stamp)
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        for old in [k for k in _MODELS if k[0] == key[0]]:  # the folder was saved again
            del _MODELS[old]
        model, tokenizer = _load(folder)
        _MODELS[key] = (model, tokenizer, threading.Lock())
        while len(_MODELS) > _CACHE_SIZE:
            _MODELS.popitem(last=False)
        return _MODELS[key]


def clear_cache() -> None:
    """Forget every loaded model (the next :func:`attention_for` loads afresh)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def _labels(model: Any, n: int) -> list[str]:
    id2label = getattr(model.config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


def attention_for(model_dir: str | os.PathLike, text: str, *, max_length: int = 128,
                  text_pair: str | None = None) -> Attention:
    """Run ``text`` through the classifier saved in ``model_dir`` and return its attention.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A folder written by ``save_pretrained`` (``config.json``, ``model.safetensors`` and the
        tokenizer), e.g. ``train_classifier(save_to=...)`` or a job's ``models/after``.
        Loaded offline, safetensors only, once per folder (cached; reloaded when the weights
        change); runs on the CPU.
    text : str
        The input; truncated to ``max_length`` word pieces.
    text_pair : str, optional
        A sentence pair's second text: the model reads ``[CLS] text [SEP] text_pair [SEP]``, as
        it was trained on pairs, and the tokens of both texts are in the view.
    max_length : int, default 128
        Longest input in word pieces, special tokens included.

    Returns
    -------
    Attention

    Raises
    ------
    ValueError
        For an empty text, a bad ``max_length``, or a folder without a loadable model (the
        message names the folder and how to get a model).
    """
    import torch

    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text is empty ({text!r}); pass the sentence to look at.")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer of at least 2 (room for [CLS] and "
                         f"[SEP]), e.g. 128; got {max_length!r}.")
    folder, stamp = _check_folder(model_dir)
    model, tokenizer, lock = _cached(folder, stamp)
    limit = min(max_length, int(getattr(tokenizer, "model_max_length", 10**6) or 10**6))
    if text_pair is not None and (not isinstance(text_pair, str) or not text_pair.strip()):
        raise ValueError(f"text_pair is empty ({text_pair!r}); pass the pair's second text, or "
                         "None for a single text.")
    enc = tokenizer(text, text_pair, truncation=True, max_length=limit, return_tensors="pt",
                    return_special_tokens_mask=True)
    special = [bool(x) for x in enc.pop("special_tokens_mask")[0].tolist()]
    ids = enc["input_ids"][0].tolist()
    with lock, torch.no_grad():
        out = model(**enc, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ValueError(f"the model in {str(folder)!r} returned no attention weights; it needs "
                         "an architecture with eager attention (BERT, RoBERTa, DistilBERT, ...).")
    att = torch.stack([a[0] for a in out.attentions]).float().numpy().astype(np.float64)
    proba = torch.softmax(out.logits[0].float(), dim=-1).numpy().astype(np.float64)
    labels = _labels(model, len(proba))
    return Attention(text=text, tokens=tokenizer.convert_ids_to_tokens(ids), special=special,
                     attentions=att, labels=labels, probabilities=proba,
                     predicted=labels[int(np.argmax(proba))], model_dir=str(folder))


# --- the chart ------------------------------------------------------------------------------

def _axis(tokens: list[str], title: str, **kwargs: Any):
    """An axis over token positions labelled with the tokens (repeated tokens stay apart)."""
    import altair as alt

    names = json.dumps([t if len(t) <= 18 else t[:17] + "…" for t in tokens])
    return alt.Axis(title=title, labelExpr=f"{names}[datum.value]", labelOverlap=False, **kwargs)


def attention_chart(att: Attention, layer: int | None = None, head: int | None = None):
    """An Altair chart of ``att``: a heatmap and the ``[CLS]`` row as bars.

    Parameters
    ----------
    att : Attention
        From :func:`attention_for`.
    layer, head : int, optional
        Counting from 0. Neither: the rollout; ``layer`` alone: that layer's mean over heads;
        both: one head.

    Returns
    -------
    altair.VConcatChart
        Top: which token (row) attends to which (column), darker is more. The colour scale
        ends at the largest weight on a word, so the columns of special tokens (which often
        take most of the attention) saturate instead of washing out the words.
        Bottom: the ``[CLS]`` row of the same matrix over the word tokens (the special tokens'
        weights are given in the subtitle), so the words that flow into the prediction stand
        out.
    """
    import altair as alt
    import pandas as pd

    matrix = att.matrix(layer, head)
    if layer is None:
        what = "attention rollout (all layers)"
    elif head is None:
        what = f"layer {layer}, mean of {att.n_heads} heads"
    else:
        what = f"layer {layer}, head {head}"
    tokens, n = att.tokens, len(att.tokens)
    special = np.asarray(att.special, dtype=bool)
    words = ~special if (~special).any() else np.ones(n, dtype=bool)
    top = float(matrix[:, words].max()) or 1.0
    cells = pd.DataFrame([(i, j, tokens[i], tokens[j], float(matrix[i, j]))
                          for i in range(n) for j in range(n)],
                         columns=["from_pos", "to_pos", "from", "to", "weight"])
    step = max(8, min(24, 640 // max(n, 1)))
    probability = float(np.max(att.probabilities))
    heat = alt.Chart(cells, title=alt.Title(
        "Attention rollout (all layers)" if layer is None else f"Attention in {what}",
        subtitle=[f"predicted {att.predicted} ({probability:.0%}); row attends to column",
                  f"colour capped at the largest weight on a word ({top:.2f})"])).mark_rect().encode(
        x=alt.X("to_pos:O", axis=_axis(tokens, "attends to", labelAngle=-60, orient="top")),
        y=alt.Y("from_pos:O", axis=_axis(tokens, "token")),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="blues", domain=[0, top], clamp=True),
                        title="weight"),
        tooltip=["from", "to", alt.Tooltip("weight:Q", format=".3f")],
    ).properties(width=step * n, height=step * n)
    positions = np.flatnonzero(words)
    bars_data = pd.DataFrame({"pos": positions, "token": [tokens[i] for i in positions],
                              "weight": matrix[0, positions]})
    left_out = ", ".join(f"{tokens[i]} {matrix[0, i]:.2f}" for i in np.flatnonzero(~words))
    bars = alt.Chart(bars_data, title=alt.Title(
        "How much [CLS] takes from each word",
        subtitle=f"{what}; special tokens left out" + (f" ({left_out})" if left_out else ""),
    )).mark_bar(color="#1f77b4").encode(
        x=alt.X("pos:O", axis=_axis(tokens, None, labelAngle=-60)),
        y=alt.Y("weight:Q", title="[CLS] weight"),
        tooltip=["token", alt.Tooltip("weight:Q", format=".3f")],
    ).properties(width=step * len(positions), height=160)
    return alt.vconcat(heat, bars)
