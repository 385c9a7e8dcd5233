"""Plan how many rows to add, generate candidates, check them, and pick the accepted ones."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from curation.augment._base import AUGMENTERS, Augmenter, AugmenterError
from curation.augment._text import Protector
from curation.augment._checks import CheckSettings, LabelModel, check_candidates
from curation.messages import format_list, suggest
from curation.progress import within
from curation.schema import TEXT, TEXT_PAIR, has_pairs, pair_key

__all__ = ["AugmentResult", "augment", "class_targets", "make_augmenter", "plan_requests",
           "whole_pairs"]

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None] | None


def make_augmenter(method: str, **params: Any) -> Augmenter:
    """The registered augmenter called ``method``, built with ``params``."""
    if method not in AUGMENTERS:
        raise AugmenterError(f"unknown augmentation method {method!r}{suggest(method, AUGMENTERS)}; "
                             f"choose one of {sorted(AUGMENTERS)}.")
    try:
        return AUGMENTERS[method](**params)
    except TypeError as exc:
        raise AugmenterError(f"method {method!r} does not take these settings: {exc}.") from exc


def augmenter_for(method: str, *, seed: int, top_k: int, max_share: float,
                  allow: Sequence[str] = (), glossary: Any = None, model: str | None = None,
                  forward: str | None = None, backward: str | None = None):
    """An augmenter from the choices of a form: ``glossary`` (a loaded
    :class:`curation.augment.Glossary`) for the glossary method, ``model`` for masked-LM,
    ``forward``/``backward`` for back-translation (models the app offers)."""
    allow = list(allow)
    if method == "glossary":
        if glossary is None:
            raise AugmenterError("the glossary method needs a glossary: choose one or upload one.")
        return make_augmenter(method, glossary=glossary, seed=seed, top_k=top_k, max_share=max_share,
                              protector=Protector(terms=glossary.protected, allow=allow))
    models = {"masked-lm": {"model": model},
              "back-translation": {"forward": forward, "backward": backward}}.get(method, {})
    if not all(models.values()):
        raise AugmenterError(f"{method} needs a model this app offers: the operator adds a "
                             "save_pretrained folder in $CURATION_HOME/models, or lists a cached "
                             "Hugging Face id in the [models] table of its projects.toml.")
    if method == "back-translation":
        return make_augmenter(method, **models, seed=seed, protector=Protector(allow=allow))
    return make_augmenter(method, **models, seed=seed, top_k=top_k, max_share=max_share,
                          protector=Protector(allow=allow))


def class_targets(labels: Sequence[str], *, targets: Mapping[str, int] | None = None,
                  max_per_item: int = 3) -> dict[str, int]:
    """How many new rows each class should get.

    By default every class is lifted towards the largest one, at most
    ``max_per_item`` new rows per existing row. ``targets`` gives wanted final
    counts per class instead (classes left out get none).

    >>> class_targets(["a"] * 10 + ["b"] * 4 + ["c"] * 1)
    {'a': 0, 'b': 6, 'c': 3}
    >>> class_targets(["a"] * 10 + ["b"] * 4, targets={"b": 6})
    {'a': 0, 'b': 2}
    """
    counts = pd.Series(list(labels), dtype=object).value_counts()
    if targets is None:
        goal = {label: int(counts.max()) for label in counts.index}
    else:
        unknown = [t for t in targets if t not in counts.index]
        if unknown:
            raise ValueError(f"targets name labels not in the data: {format_list(map(repr, unknown))}; "
                             f"labels are {sorted(counts.index)}.")
        goal = {label: int(targets.get(label, counts[label])) for label in counts.index}
    return {label: int(min(max(goal[label] - counts[label], 0), counts[label] * max_per_item))
            for label in sorted(counts.index)}


def plan_requests(curated: pd.DataFrame, *, targets: Mapping[str, int] | None = None,
                  items: Sequence[str] | None = None, per_item: int = 1,
                  max_per_item: int = 3) -> pd.Series:
    """Accepted rows wanted per source item (index ``item_id``), spread evenly within a class."""
    if items is not None:
        known = set(curated["item_id"])
        unknown = [i for i in items if i not in known]
        if unknown:
            raise ValueError(f"items {format_list(map(repr, unknown))} are not in the curated data; "
                             "pass item ids from its item_id column.")
        return pd.Series(per_item, index=pd.Index(list(dict.fromkeys(items)), name="item_id"))
    need = class_targets(curated["label"].tolist(), targets=targets, max_per_item=max_per_item)
    wanted = pd.Series(0, index=pd.Index(curated["item_id"], name="item_id"))
    for label, n in need.items():
        ids = curated.loc[curated["label"] == label, "item_id"].to_numpy()
        if n and len(ids):
            base, extra = divmod(n, len(ids))
            wanted[ids] = base
            wanted[ids[:extra]] += 1
    return wanted[wanted > 0]


@dataclass
class AugmentResult:
    """Every candidate with its checks (``candidates``), the picked ones, and a summary."""

    candidates: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> pd.DataFrame:
        """The accepted rows, ready for :meth:`curation.store.Project.save_augmentations`
        (whole pairs for sentence pairs, :func:`whole_pairs`)."""
        chosen = self.candidates[self.candidates["status"] == "accepted"].reset_index(drop=True)
        return whole_pairs(chosen)

    @property
    def rejected(self) -> pd.DataFrame:
        return self.candidates[self.candidates["status"] == "rejected"].reset_index(drop=True)


def _check_curated(curated: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(curated, pd.DataFrame):
        raise ValueError(f"curated must be a pandas DataFrame; got {type(curated).__name__}.")
    missing = [c for c in ("item_id", "text", "label") if c not in curated.columns]
    if missing:
        raise ValueError(f"curated is missing columns {missing}; it needs item_id, text and label "
                         "(e.g. from curation.curate.curate).")
    rows = curated
    if "status" in rows.columns:
        rows = rows[~rows["status"].isin(["dropped", "ambiguous"])]
    rows = rows[rows["label"].notna()].reset_index(drop=True)
    dup = rows["item_id"][rows["item_id"].duplicated()]
    if len(dup):
        raise ValueError(f"curated has repeated item ids {format_list(map(repr, dup.unique()))}; pass one "
                         "row per item.")
    if rows.empty:
        raise ValueError("curated has no labelled rows to augment.")
    return rows


def _pick(checked: pd.DataFrame, wanted: pd.Series) -> pd.Series:
    """Status per candidate: accepted up to each source's quota (best first), else surplus."""
    score = checked["similarity"].fillna(0) + checked["label_prob"].fillna(0)
    order = checked.assign(_score=score).sort_values(["source_id", "_score"],
                                                     ascending=[True, False], kind="stable")
    rank = order[order["passed"]].groupby("source_id").cumcount()
    quota = order.loc[rank.index, "source_id"].map(wanted).fillna(0).astype(float)
    status = pd.Series("rejected", index=checked.index, dtype=object)
    status[rank.index] = np.where(rank < quota, "accepted", "surplus")
    return status


def augment(curated: pd.DataFrame, augmenter: Augmenter, *, targets: Mapping[str, int] | None = None,
            items: Sequence[str] | None = None, per_item: int = 1, max_per_item: int = 3,
            oversample: float = 3.0, checks: CheckSettings | None = None, embedder: Any = None,
            project: Any = None, progress: Progress = None,
            actor: str | None = None, side: str = TEXT_PAIR) -> AugmentResult:
    """Generate, check and pick augmented rows for the curated data.

    Parameters
    ----------
    curated : DataFrame
        ``item_id, text, label`` (rows with status dropped/ambiguous are ignored).
    augmenter : Augmenter
        See :func:`make_augmenter`.
    targets, items, per_item, max_per_item
        What to add: by default lift minority classes towards the largest (see
        :func:`class_targets`); or ``per_item`` rows for each of ``items``.
    oversample : float
        Candidates tried per wanted row (checks reject some).
    checks : CheckSettings
    embedder, project
        Sentence embedder (default: the bundled MiniLM) and an optional
        :class:`curation.store.Project` whose embedding cache is used.
    progress : callable(fraction, message), optional
    side : {"text_pair", "text"}
        Sentence pairs only: which text is rewritten; the other is kept as it is. Default the
        second (the hypothesis of NLI, the answer of question-answer matching: the shorter side,
        where a substitution is least likely to add or remove a fact of the premise). Every
        check reads the rewritten side against its source, except the label check and "not
        new", which read the whole pair.

    Returns
    -------
    AugmentResult
        ``candidates`` has the check columns plus ``status`` (accepted /
        surplus: passed but the quota was full / rejected) and ``params``. For pairs ``text``
        and ``source_text`` are the rewritten side, ``side`` names it and ``kept_text`` is the
        other side; :attr:`AugmentResult.accepted` gives whole pairs (``text``, ``text_pair``).
    """
    checks = checks or CheckSettings()
    rows = _check_curated(curated)
    pairs = has_pairs(rows)
    if pairs and side not in (TEXT, TEXT_PAIR):
        raise ValueError(f"side={side!r}: pick 'text' (the first text of each pair) or "
                         "'text_pair' (the second) to rewrite.")
    side = side if pairs else TEXT
    if not oversample >= 1:
        raise ValueError(f"oversample must be at least 1; got {oversample!r}.")
    wanted = plan_requests(rows, targets=targets, items=items, per_item=per_item,
                           max_per_item=max_per_item)
    start = time.perf_counter()
    by_id = rows.set_index("item_id")
    ask = [math.ceil(n * oversample) for n in wanted]
    cands = augmenter.generate(wanted.index.tolist(), by_id.loc[wanted.index, side].tolist(), n=ask,
                               progress=within(progress, 0.0, 0.6, "generating candidates"))
    generated = time.perf_counter()
    if pairs:  # the pairs' vectors, the rewritten side's similarity and whole-pair keys
        existing, cand_emb, extra = _pair_inputs(rows, cands, side, embedder=embedder,
                                                 project=project, progress=progress, actor=actor)
    else:
        from curation.embeddings import embed_texts

        existing = embed_texts(rows["text"].tolist(), embedder=embedder, project=project,
                               progress=within(progress, 0.6, 0.8, "embedding the existing texts"),
                               actor=actor)
        cand_emb = embed_texts([c.text for c in cands], embedder=embedder,
                               progress=within(progress, 0.8, 1.0, "embedding the candidates"))
        extra = {}
    model = (LabelModel().fit(existing, rows["label"].tolist())
             if checks.min_label_prob > 0 else None)
    checked = check_candidates(cands, labels=by_id["label"].to_dict(),
                               candidate_embeddings=cand_emb, existing_ids=rows["item_id"].tolist(),
                               existing_texts=rows[side].tolist(), existing_embeddings=existing,
                               label_model=model, settings=checks,
                               protector=augmenter.protector, **extra)
    params = augmenter.params()
    if pairs:
        other = TEXT if side == TEXT_PAIR else TEXT_PAIR
        checked.insert(checked.columns.get_loc("text") + 1, "kept_text",
                       [by_id.at[item, other] for item in checked["source_id"]])
        checked.insert(checked.columns.get_loc("text") + 1, "side", side)
        params = {**params, "side": side}
    checked["status"] = _pick(checked, wanted) if len(checked) else pd.Series(dtype=object)
    checked["params"] = [params] * len(checked)
    elapsed = time.perf_counter() - start
    summary = _summary(checked, wanted, augmenter, checks, elapsed, generated - start)
    if pairs:
        summary["side"] = side
    logger.info("augment %s%s: %s", augmenter.method,
                f" (pairs, {side} rewritten)" if pairs else "",
                {k: summary[k] for k in ("tried", "accepted")})
    return AugmentResult(candidates=checked, summary=summary)


def _pair_inputs(rows: pd.DataFrame, cands: Sequence[Any], side: str, *, embedder: Any,
                 project: Any, progress: Progress,
                 actor: str | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """For pairs: the existing and candidate pair vectors, and the ``check_candidates`` keywords
    that make its checks read the rewritten side (``similarity``) or the whole pair (the keys)."""
    from curation.splits import normalise_text, text_keys

    existing, cand_pairs, similarity = _pair_vectors(rows, cands, side, embedder=embedder,
                                                     project=project, progress=progress,
                                                     actor=actor)
    other = rows.set_index("item_id")[TEXT if side == TEXT_PAIR else TEXT_PAIR]
    keys = []
    for cand in cands:
        kept, new = normalise_text(other[cand.source_id]), normalise_text(cand.text)
        keys.append(pair_key(kept, new) if side == TEXT_PAIR else pair_key(new, kept))
    return existing, cand_pairs, {"similarity": similarity,
                                  "existing_keys": text_keys(rows).tolist(),
                                  "candidate_keys": keys}


def _pair_vectors(rows: pd.DataFrame, cands: Sequence[Any], side: str, *, embedder: Any,
                  project: Any, progress: Progress,
                  actor: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The existing pairs' vectors, each candidate's pair vector (its rewritten side in place of
    the source's) and the cosine of each rewritten side to the side it rewrites."""
    from curation.embeddings import embed_rows, embed_texts

    existing = embed_rows(rows, embedder=embedder, project=project, actor=actor,
                          progress=within(progress, 0.6, 0.8, "embedding the existing pairs"))
    cand_side = embed_texts([c.text for c in cands], embedder=embedder,
                            progress=within(progress, 0.8, 1.0, "embedding the candidates"))
    half = existing.shape[1] // 2  # a pair's vector: both sides' unit vectors / sqrt(2)
    position = {item: k for k, item in enumerate(rows["item_id"])}
    source = np.array([position[c.source_id] for c in cands], dtype=int)
    changed = slice(0, half) if side == TEXT else slice(half, None)
    kept = slice(half, None) if side == TEXT else slice(0, half)
    cand_pairs = np.zeros((len(cands), existing.shape[1]), dtype=np.float32)
    if not len(cands):
        return existing, cand_pairs, np.zeros(0)
    similarity = np.einsum("ij,ij->i", cand_side, existing[source, changed] * np.sqrt(2.0))
    cand_pairs[:, changed] = cand_side / np.sqrt(2.0)
    cand_pairs[:, kept] = existing[source, kept]
    return existing, cand_pairs, similarity


def whole_pairs(candidates: pd.DataFrame) -> pd.DataFrame:
    """Candidates of sentence pairs (with ``side`` and ``kept_text``) as whole pairs: ``text``
    and ``text_pair`` the new item's two texts (the rewritten side in its place). Frames of
    single texts come back as they are.

    >>> c = pd.DataFrame({"text": ["new b"], "side": ["text_pair"], "kept_text": ["a"]})
    >>> whole_pairs(c)[["text", "text_pair"]].values.tolist()
    [['a', 'new b']]
    """
    if "side" not in candidates.columns:
        return candidates
    second = candidates["side"].eq(TEXT_PAIR)
    out = candidates.drop(columns=["side", "kept_text"])
    out[TEXT] = candidates["kept_text"].where(second, candidates[TEXT])
    out.insert(out.columns.get_loc(TEXT) + 1, TEXT_PAIR,
               candidates[TEXT].where(second, candidates["kept_text"]))
    return out


def _summary(checked: pd.DataFrame, wanted: pd.Series, augmenter: Augmenter,
             checks: CheckSettings, elapsed: float, generate_s: float) -> dict[str, Any]:
    accepted = checked[checked["status"] == "accepted"] if len(checked) else checked
    failures: dict[str, int] = {}
    for reason in checked.loc[~checked["passed"], "reason"] if len(checked) else []:
        for part in reason.split("; "):
            key = part.split(":")[0]
            failures[key] = failures.get(key, 0) + 1
    return {
        "method": augmenter.method, "params": augmenter.params(), "checks": checks.as_dict(),
        "sources": int(len(wanted)), "wanted": int(wanted.sum()), "tried": int(len(checked)),
        "passed": int(checked["passed"].sum()) if len(checked) else 0,
        "accepted": int(len(accepted)),
        "accepted_by_label": {k: int(v) for k, v in accepted["label"].value_counts().items()}
        if len(accepted) else {},
        "rejections": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
        "mean_similarity_accepted": float(accepted["similarity"].mean()) if len(accepted) else None,
        "seconds": round(elapsed, 3), "generate_seconds": round(generate_s, 3),
        "candidates_per_second": round(len(checked) / elapsed, 2) if elapsed > 0 else None,
    }
