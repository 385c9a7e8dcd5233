"""Post-processing rules: a small, auditable rule engine applied after the model.

Rules live in YAML beside the guidelines (``guidelines/*_rules.yaml``)::

    rules:
      - id: P1
        reason: An unrecognised card payment is a fraud alert (guideline R2).
        label: fraud_alert
        keywords: ["didn't make", "do not recognise", "don't recognise"]
        when_predicted: [complaint, request]      # optional: only override these predictions

Each rule has an ``id``, a ``label`` to set, a ``reason``, and one or more conditions, all of
which must hold:

``keywords``       any of these words or phrases occurs (case-insensitive, whole words);
``all_keywords``   every one of these occurs;
``pattern``        this regular expression matches (Python ``re``, case-insensitive);
``unless``         none of these words or phrases occurs;
``when_predicted`` the model's label is one of these.

Rules are tried in file order and the **first** rule whose conditions hold decides the item
(later rules never see it), so a specific rule goes above a general one. A rule that sets the
label the model already gave is a *confirmation*; one that changes it is an *override*, recorded
with the rule's id and reason. :meth:`RuleSet.evaluate` says, against the true labels, how many
of each rule's overrides helped and hurt, so a rule that hurts is visible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Rule", "RuleOutcome", "RuleSet", "load_rules"]

_KEYS = {"id", "label", "reason", "keywords", "all_keywords", "pattern", "unless", "when_predicted"}
_CONDITIONS = ("keywords", "all_keywords", "pattern", "when_predicted")


def _phrase_regex(phrases: Sequence[str]) -> re.Pattern | None:
    if not phrases:
        return None
    parts = sorted((re.escape(p.strip().lower()).replace(r"\ ", r"\s+") for p in phrases), key=len,
                   reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """One rule: conditions, the label it sets, and why."""

    id: str
    label: str
    reason: str
    keywords: tuple[str, ...] = ()
    all_keywords: tuple[str, ...] = ()
    pattern: str | None = None
    unless: tuple[str, ...] = ()
    when_predicted: tuple[str, ...] = ()
    _any: Any = field(default=None, repr=False, compare=False, init=False)
    _all: Any = field(default=(), repr=False, compare=False, init=False)
    _regex: Any = field(default=None, repr=False, compare=False, init=False)
    _not: Any = field(default=None, repr=False, compare=False, init=False)

    def __post_init__(self) -> None:
        # compiled once here, so a Rule made directly matches the same as one from load_rules
        object.__setattr__(self, "_any", _phrase_regex(self.keywords))
        object.__setattr__(self, "_all", tuple(_phrase_regex([k]) for k in self.all_keywords))
        object.__setattr__(self, "_not", _phrase_regex(self.unless))
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern, re.IGNORECASE))

    @classmethod
    def build(cls, id: str, label: str, reason: str, **conditions: Any) -> Rule:
        """A rule (see :func:`load_rules` for the fields); conditions as lists or tuples."""
        return cls(id=id, label=label, reason=reason,
                   **{k: (tuple(v) if isinstance(v, list) else v) for k, v in conditions.items()})

    def matches(self, text: str, predicted: str | None = None) -> bool:
        """True when every condition of the rule holds for ``text`` (and the model's label)."""
        if self.when_predicted and predicted not in self.when_predicted:
            return False
        if self._any is not None and not self._any.search(text):
            return False
        if any(not r.search(text) for r in self._all):
            return False
        if self._regex is not None and not self._regex.search(text):
            return False
        return not (self._not is not None and self._not.search(text))


@dataclass
class RuleOutcome:
    """Labels after the rules, and every rule that fired."""

    labels: list[str]
    #: One row per item a rule decided: ``row, rule_id, reason, model_label, rule_label, changed``.
    fired: pd.DataFrame

    @property
    def overrides(self) -> pd.DataFrame:
        """Only the rows where a rule changed the model's label."""
        return self.fired[self.fired["changed"]].reset_index(drop=True)


@dataclass
class RuleSet:
    """Rules in order; the first whose conditions hold decides an item."""

    rules: list[Rule]
    source: str = ""

    @property
    def labels(self) -> set[str]:
        return {r.label for r in self.rules}

    def check_labels(self, labels: Sequence[str]) -> None:
        """Refuse rules that set or test a label outside ``labels``, naming the rule."""
        known = set(labels)
        for rule in self.rules:
            bad = sorted(({rule.label} | set(rule.when_predicted)) - known)
            if bad:
                raise ValueError(f"{self.source or 'rules'}: rule {rule.id!r} uses label(s) {bad} that "
                                 f"are not in the label set {sorted(known)}; fix the rule's label or "
                                 "when_predicted.")

    def apply(self, texts: Sequence[str], predicted: Sequence[str]) -> RuleOutcome:
        """The model's labels with the rules applied.

        >>> rules = RuleSet([Rule.build("R1", "neg", "says awful", keywords=["awful"])])
        >>> out = rules.apply(["an awful day", "a fine day"], ["pos", "pos"])
        >>> out.labels, out.overrides["rule_id"].tolist()
        (['neg', 'pos'], ['R1'])
        """
        texts, predicted = list(texts), list(predicted)
        if len(texts) != len(predicted):
            raise ValueError(f"{len(texts)} texts but {len(predicted)} predictions; give one "
                             "prediction per text.")
        labels, fired = list(predicted), []
        for i, (text, model_label) in enumerate(zip(texts, predicted)):
            for rule in self.rules:
                if rule.matches(str(text), model_label):
                    labels[i] = rule.label
                    fired.append((i, rule.id, rule.reason, model_label, rule.label,
                                  rule.label != model_label))
                    break
        frame = pd.DataFrame(fired, columns=["row", "rule_id", "reason", "model_label", "rule_label",
                                             "changed"])
        return RuleOutcome(labels, frame.astype({"changed": bool}))

    def evaluate(self, texts: Sequence[str], predicted: Sequence[str],
                 truth: Sequence[str]) -> dict[str, Any]:
        """Accuracy without and with the rules, every override and each rule's tally.

        Returns a JSON-serialisable dict: ``accuracy_without``, ``accuracy_with``, ``n_fired``,
        ``n_overrides``, ``overrides`` (one dict per override: ``row, text, rule_id, reason,
        model_label, rule_label, true_label, effect`` where effect is ``helped`` / ``hurt`` /
        ``neutral``: both wrong), and ``per_rule`` (``fired, overrides, helped, hurt, net``).
        """
        truth = [str(t) for t in truth]
        if len(truth) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(truth)} true labels.")
        outcome = self.apply(texts, predicted)
        without = float(np.mean([p == t for p, t in zip(predicted, truth)])) if truth else float("nan")
        with_rules = float(np.mean([p == t for p, t in zip(outcome.labels, truth)])) if truth else float("nan")
        overrides = []
        for row in outcome.overrides.itertuples(index=False):
            true = truth[row.row]
            effect = ("helped" if row.rule_label == true else
                      "hurt" if row.model_label == true else "neutral")
            overrides.append({"row": int(row.row), "text": str(texts[row.row]), "rule_id": row.rule_id,
                              "reason": row.reason, "model_label": row.model_label,
                              "rule_label": row.rule_label, "true_label": true, "effect": effect})
        per_rule = {}
        for rule in self.rules:
            mine = [o for o in overrides if o["rule_id"] == rule.id]
            helped = sum(o["effect"] == "helped" for o in mine)
            hurt = sum(o["effect"] == "hurt" for o in mine)
            per_rule[rule.id] = {"fired": int((outcome.fired["rule_id"] == rule.id).sum()),
                                 "overrides": len(mine), "helped": helped, "hurt": hurt,
                                 "net": helped - hurt, "reason": rule.reason}
        return {"source": self.source, "accuracy_without": without, "accuracy_with": with_rules,
                "n_fired": int(len(outcome.fired)), "n_overrides": len(overrides),
                "overrides": overrides, "per_rule": per_rule}


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: {key!r} must be a list of non-empty strings, got {value!r}.")
    return tuple(v.strip() for v in value)


def load_rules(source: str | Path | dict | list, *, name: str | None = None) -> RuleSet:
    """Read and check a rules YAML file (or the parsed ``{"rules": [...]}``, e.g. an upload:
    ``name`` is what messages call it).

    Raises
    ------
    ValueError
        Naming the file, the rule (by position and id) and the fix: a missing id, label or
        reason, a rule with no condition, an unknown key, a repeated id, a bad regular expression.
    """
    import yaml

    name = name or "rules"
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise ValueError(f"{name}: no such rules file; check the path (rules live beside the "
                             "guidelines, e.g. guidelines/bank_support_rules.yaml).")
        try:
            source = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(f"{name}: is not valid YAML ({err}).") from None
    items = source.get("rules") if isinstance(source, dict) else source
    if not isinstance(items, list) or not items:
        raise ValueError(f"{name}: needs a top-level 'rules:' list with at least one rule.")
    rules, seen = [], set()
    for n, item in enumerate(items, start=1):
        where = f"{name}: rule {n}"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a mapping with id, label, reason and conditions.")
        where = f"{name}: rule {n} ({item.get('id', 'no id')!r})"
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: {sorted(_KEYS)}.")
        for key in ("id", "label", "reason"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ValueError(f"{where} needs a non-empty {key!r}.")
        if item["id"] in seen:
            raise ValueError(f"{where}: id {item['id']!r} is used twice; give each rule its own id.")
        seen.add(item["id"])
        conditions = {k: _strings(item.get(k), where, k)
                      for k in ("keywords", "all_keywords", "unless", "when_predicted")}
        pattern = item.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"{where}: 'pattern' must be a non-empty regular expression.")
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{where}: pattern {pattern!r} is not a valid regular expression "
                                 f"({err}).") from None
        if not any(conditions[k] for k in ("keywords", "all_keywords", "when_predicted")) and not pattern:
            raise ValueError(f"{where} has no condition; give keywords, all_keywords, pattern or "
                             "when_predicted (a rule without one would relabel everything).")
        rules.append(Rule.build(item["id"].strip(), item["label"].strip(), item["reason"].strip(),
                                pattern=pattern, **conditions))
    return RuleSet(rules, source=name)
