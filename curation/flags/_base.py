"""The flagger interface, its registry, and the shared context every flagger reads.

A flagger is a class with a ``kind`` and a ``flag(context)`` method returning
rows of :data:`FLAG_COLUMNS`. Registering it (``@register_flagger``) is all it
takes for :func:`curation.flags.flag_items` and the app to run it: callers never
change (the cleanlab issue-manager factory pattern).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from curation._registry import register
from curation.aggregation import DawidSkene, MajorityVote, break_ties
from curation.agreement import CountTable, count_table
from curation.guidelines import Guideline
from curation.schema import ANNOTATOR, ITEM, TEXT

__all__ = ["FLAG_COLUMNS", "FLAGGERS", "FlagContext", "Flagger", "empty_flags", "register_flagger"]

logger = logging.getLogger(__name__)

#: Columns of every flag row.
FLAG_COLUMNS = ("item_id", "kind", "score", "reason", "suggested_label", "rule_id")
#: kind -> flagger class, filled by :func:`register_flagger`.
FLAGGERS: dict[str, type[Flagger]] = {}


def register_flagger(cls: type[Flagger]) -> type[Flagger]:
    """Class decorator: make a flagger available under its ``kind``."""
    return register(FLAGGERS, cls, "kind", "flagger")


def empty_flags() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object) for c in FLAG_COLUMNS})


class Flagger:
    """Base class. Subclasses set ``kind``, ``needs`` and implement :meth:`flag`.

    ``needs`` names what the flagger requires from the context: ``"model"``
    (out-of-fold class probabilities, hence embeddings), ``"embeddings"``, or
    ``"annotators"`` (at least two annotations on some item). A flagger whose
    needs are not met is skipped, with the reason logged.
    """

    kind: str = ""
    needs: tuple[str, ...] = ()
    description: str = ""

    def flag(self, context: FlagContext) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def missing(self, context: FlagContext) -> list[str]:
        """What this flagger needs that the context lacks (empty when it can run)."""
        return [need for need in self.needs if not context.has(need)]

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class FlagContext:
    """The inputs of one flagging pass, and the intermediate results flaggers share.

    Parameters
    ----------
    df : DataFrame
        The long annotation frame.
    embeddings : ndarray of shape (n_items, dim), optional
        One row per item, in the order of ``df``'s first appearance of each item
        (``count_table(df).items``); rows L2-normalised.
    guideline : Guideline, optional
        Links flags to the rule that settles the confused label pair.
    seed : int
        Seed of the cross-validation that produces out-of-fold probabilities.
    n_folds : int
        Folds of that cross-validation.
    model_probs : DataFrame, optional
        Out-of-fold class probabilities computed elsewhere (a fine-tuned classifier's:
        ``python -m fine_tune out-of-fold``), indexed by item id, one column per label.
    model_signal : {"embedding", "fine-tuned", "ensemble"}
        What the model-based flaggers read: the embedding model's probabilities, the given
        ones, or the mean of both (:data:`~curation.flags._model.MODEL_SIGNALS`).
    """

    def __init__(self, frame: pd.DataFrame, *, embeddings: np.ndarray | None = None,
                 guideline: Guideline | None = None, labels: Sequence[str] | None = None,
                 seed: int = 0, n_folds: int = 5, model_probs: pd.DataFrame | None = None,
                 model_signal: str = "embedding") -> None:
        from curation.flags._model import MODEL_SIGNALS, check_model_probs

        self.frame = frame
        # the guideline's label order when it covers the frame's labels, else the given set
        self.table: CountTable = count_table(frame, labels=_guideline_labels(frame, guideline) or labels)
        self.guideline = guideline
        self.seed = seed
        self.n_folds = n_folds
        self.embeddings = _check_embeddings(embeddings, len(self.table.items))
        if model_signal not in MODEL_SIGNALS:
            raise ValueError(f"unknown model signal {model_signal!r}; use {', '.join(MODEL_SIGNALS)}.")
        if (model_probs is None) != (model_signal == "embedding"):
            raise ValueError("the fine-tuned and ensemble model signals read given probabilities "
                             "(python -m fine_tune out-of-fold); the embedding signal reads none."
                             if model_probs is None else
                             "probabilities were given but the model signal is 'embedding': choose "
                             "fine-tuned or ensemble.")
        if model_signal == "ensemble" and self.embeddings is None:
            raise ValueError("the ensemble model signal averages the embedding model with the given "
                             "probabilities: it needs the embeddings too.")
        self.model_signal = model_signal
        self.given_probs = (None if model_probs is None else
                            check_model_probs(model_probs, list(self.table.items), self.labels))

    @property
    def items(self) -> pd.Index:
        return self.table.items

    @property
    def labels(self) -> list[str]:
        return self.table.labels

    def has(self, need: str) -> bool:
        if need == "embeddings":
            return self.embeddings is not None
        if need == "model":
            return self.pred_probs is not None
        if need == "annotators":
            return bool((self.table.counts.sum(axis=1) >= 2).any())
        raise ValueError(f"unknown flagger need {need!r}; use model, embeddings or annotators.")

    @cached_property
    def text_keys(self) -> pd.Series:
        """Each item's normalised text(s) (:func:`curation.splits.text_keys`), by item."""
        from curation.splits import text_keys

        first = self.frame.drop_duplicates(ITEM)
        return text_keys(first).set_axis(first[ITEM]).reindex(self.items)

    @cached_property
    def texts(self) -> pd.Series:
        return self.frame.drop_duplicates(ITEM).set_index(ITEM)[TEXT].reindex(self.items)

    @cached_property
    def majority(self) -> MajorityVote:
        return MajorityVote(labels=self.labels).fit(self.table)

    @cached_property
    def dawid_skene(self) -> DawidSkene:
        return DawidSkene(labels=self.labels).fit(self.frame)

    @cached_property
    def given_codes(self) -> np.ndarray:
        """The label each item has now: majority vote, Dawid-Skene where the vote ties."""
        given = self.majority.labels_.copy()
        tied = given.isna()
        if tied.any():
            given[tied] = break_ties(self.majority, self.dawid_skene.probas_)["label"].reindex(
                given.index[tied])
        return pd.Index(self.labels).get_indexer(given.reindex(self.items))

    @cached_property
    def given_labels(self) -> pd.Series:
        """:attr:`given_codes` as labels, by item id."""
        return pd.Series(np.asarray(self.labels, dtype=object)[self.given_codes], index=self.items)

    @cached_property
    def given_posterior(self) -> np.ndarray:
        """Dawid-Skene's posterior of the label each item has now (:attr:`given_codes`)."""
        ds = self.dawid_skene.probas_.reindex(self.items)[self.labels].to_numpy()
        return ds[np.arange(len(self.items)), self.given_codes]

    @cached_property
    def pred_probs(self) -> np.ndarray | None:
        """Out-of-fold class probabilities of the model signal (or None without a model)."""
        from curation.flags._model import mixed_probabilities

        return mixed_probabilities(self.model_signal, embedding=self.embedding_probs,
                                   given=self.given_probs)

    @cached_property
    def embedding_probs(self) -> np.ndarray | None:
        """Out-of-fold class probabilities of a classifier over the embeddings (or None)."""
        from curation.flags._model import out_of_fold_probabilities

        if self.embeddings is None or self.model_signal == "fine-tuned":
            return None
        return out_of_fold_probabilities(self.embeddings, self.given_codes, n_classes=len(self.labels),
                                         n_folds=self.n_folds, seed=self.seed)

    @cached_property
    def votes_by_item(self) -> pd.Series:
        """item_id -> list of (annotator, label), for reasons."""
        return self.frame.groupby(ITEM, sort=False).apply(
            lambda g: list(zip(g[ANNOTATOR], g["label"])), include_groups=False).reindex(self.items)

    @cached_property
    def crowdlab(self) -> pd.DataFrame:
        """cleanlab CROWDLAB label quality per item (consensus_label, consensus_quality_score)."""
        return _crowdlab(self.table, self.pred_probs)

    def doubt(self) -> pd.DataFrame:
        """Per item, every available continuous sign that its current label is wrong, in [0, 1].

        ``minority`` (share of votes against the majority), ``dawid_skene``
        (1 - posterior of the current label), ``model`` (1 - out-of-fold
        probability of the current label) and ``crowdlab`` (1 - CROWDLAB
        consensus quality); a column is NaN where its input is missing.
        """
        rows = np.arange(len(self.items))
        given = self.given_codes
        out = pd.DataFrame({"minority": 1 - self.majority.confidence_.to_numpy(),
                            "dawid_skene": 1 - self.given_posterior}, index=self.items)
        single = self.table.counts.sum(axis=1) < 2
        out.loc[single, ["minority", "dawid_skene"]] = np.nan
        has_model = self.pred_probs is not None
        out["model"] = 1 - self.pred_probs[rows, given] if has_model else np.nan
        out["crowdlab"] = (1 - self.crowdlab["consensus_quality_score"].to_numpy()
                           if has_model and self.has("annotators") else np.nan)
        return out.clip(0, 1)

    def duplicate_pairs(self, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item positions (i, j) of near-duplicate texts and their similarity (1.0 = same text).

        Same text after :func:`curation.splits.normalise_text`, or embedding
        cosine >= ``threshold`` when embeddings are given.
        """
        from curation.splits import similar_pairs

        first, second = _exact_duplicate_pairs(self.text_keys, self.given_codes)
        sims = [np.ones(len(first))]
        firsts, seconds = [first], [second]
        if self.embeddings is not None:
            i, j, cos = similar_pairs(self.embeddings, threshold=threshold)
            firsts.append(i)
            seconds.append(j)
            sims.append(np.minimum(cos, 0.999999))
        pairs = pd.DataFrame({"i": np.concatenate(firsts), "j": np.concatenate(seconds),
                              "sim": np.concatenate(sims)})
        pairs = pairs.sort_values("sim", ascending=False).drop_duplicates(["i", "j"])
        return pairs["i"].to_numpy(int), pairs["j"].to_numpy(int), pairs["sim"].to_numpy(float)

    def rule_id(self, a: str | None, b: str | None) -> str | None:
        if self.guideline is None or not a or not b or a == b:
            return None
        rule = self.guideline.rule_for_pair(a, b)
        return rule.id if rule else None


def _guideline_labels(frame: pd.DataFrame, guideline: Guideline | None) -> list[str] | None:
    if guideline is None:
        return None
    names = guideline.label_names
    return names if set(frame["label"]) <= set(names) else None


def _check_embeddings(embeddings: np.ndarray | None, n_items: int) -> np.ndarray | None:
    if embeddings is None:
        return None
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != n_items:
        raise ValueError(f"embeddings have shape {embeddings.shape}; expected one row per item "
                         f"({n_items}, dim), in the order items first appear in the frame.")
    if not np.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinite values; recompute them.")
    return embeddings


def label_issue_positions(given: np.ndarray, probs: np.ndarray, **options) -> np.ndarray:
    """cleanlab's ``find_label_issues`` in this process: never a forked pool of workers.

    Left to itself cleanlab forks ``multiprocessing.Pool(cpu_count)`` on Linux. Forked from the
    Streamlit server, the workers inherit its SIGTERM handler, so the pool's ``terminate()`` does
    not end them and the flagging run waits on them for ever (seen in CI: two "Stopping..." lines
    in the server log and a Review page that never came back). The work is one pass per class,
    milliseconds at these sizes, so one process loses nothing.
    """
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(given, probs, n_jobs=1, **options))


def _crowdlab(table: CountTable, probs: np.ndarray) -> pd.DataFrame:
    """CROWDLAB label quality (cleanlab) from the annotation codes and model probabilities."""
    from cleanlab.multiannotator import get_label_quality_multiannotator

    wide = np.full((len(table.items), len(table.annotators)), np.nan)
    wide[table.item_codes, table.annotator_codes] = table.label_codes
    result = get_label_quality_multiannotator(
        pd.DataFrame(wide), probs, verbose=False, return_annotator_stats=False,
        return_detailed_quality=False)
    return result["label_quality"].reset_index(drop=True)


def _exact_duplicate_pairs(keys: pd.Series, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of positions whose texts are equal once normalised (``keys``: the normalised texts).

    Within each such group every member is paired with the first member of each
    label (so any two members with different labels are linked, in O(size x labels)).
    """
    frame = pd.DataFrame({"key": keys.to_numpy(), "label": labels, "pos": np.arange(len(keys))})
    frame = frame[frame.duplicated("key", keep=False)]
    reps = frame.drop_duplicates(["key", "label"])[["key", "pos"]].rename(columns={"pos": "rep"})
    pairs = frame.merge(reps, on="key")
    pairs = pairs[pairs["pos"] != pairs["rep"]]
    first, second = np.minimum(pairs["pos"], pairs["rep"]), np.maximum(pairs["pos"], pairs["rep"])
    return first.to_numpy(int), second.to_numpy(int)
