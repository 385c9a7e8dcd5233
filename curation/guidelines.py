"""Annotation guidelines: label definitions and numbered boundary rules, read from YAML.

A rule declares the label pair it settles (``pair: [complaint, request]``), so a
flag about an item torn between those two labels links to the rule that decides
it. The schema is the one of ``guidelines/bank_support.yaml``::

    name: ...
    version: 1
    labels:
      - {name: complaint, definition: "...", examples: ["...", ...]}
    rules:
      - {id: R1, pair: [complaint, request], title: "...", rule: "...",
         examples: [{text: "...", label: complaint}, ...]}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["Guideline", "LabelDefinition", "Rule", "load_guideline"]


@dataclass(frozen=True)
class LabelDefinition:
    name: str
    definition: str
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A numbered boundary rule deciding between two labels."""

    id: str
    pair: frozenset[str]
    title: str
    text: str
    examples: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """``"R1 (complaint vs request): Disputing a charge is a complaint"``."""
        return f"{self.id} ({' vs '.join(sorted(self.pair))}): {self.title}"


@dataclass(frozen=True)
class Guideline:
    """A guideline: its labels in order and its boundary rules."""

    name: str
    labels: tuple[LabelDefinition, ...]
    rules: tuple[Rule, ...] = field(default=())
    source: str = ""

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    def rule_for_pair(self, a: str, b: str) -> Rule | None:
        """The first rule that settles labels ``a`` and ``b`` (in either order), or ``None``.

        >>> g = Guideline("g", (LabelDefinition("x", ""), LabelDefinition("y", "")),
        ...               (Rule("R1", frozenset({"x", "y"}), "t", "text"),))
        >>> g.rule_for_pair("y", "x").id
        'R1'
        """
        wanted = frozenset((a, b))
        return next((rule for rule in self.rules if rule.pair == wanted), None)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise ValueError(f"{self.source or self.name}: no rule {rule_id!r}; rules are "
                         f"{', '.join(r.id for r in self.rules) or 'none'}.")


def load_guideline(path: str | os.PathLike) -> Guideline:
    """Read and check a guideline YAML file.

    Raises ``ValueError`` naming the file and the entry at fault: a missing
    key, a rule whose pair is not two known labels, or a repeated rule id.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"guideline {path} not found; pass the path of a YAML guideline "
                         "(see guidelines/bank_support.yaml for the schema).")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err}).") from None
    if not isinstance(spec, dict) or not spec.get("labels"):
        raise ValueError(f"{path}: needs a top-level 'labels' list (and optionally 'rules').")
    labels = tuple(_label(entry, path, i) for i, entry in enumerate(spec["labels"], start=1))
    names = [label.name for label in labels]
    rules = tuple(_rule(entry, path, names) for entry in spec.get("rules") or [])
    _check_unique([r.id for r in rules], path, "rule id")
    _check_unique(names, path, "label")
    return Guideline(str(spec.get("name") or path.stem), labels, rules, source=str(path))


def _label(entry: dict, path: Path, position: int) -> LabelDefinition:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise ValueError(f"{path}: label entry {position} needs a 'name'.")
    return LabelDefinition(str(entry["name"]), str(entry.get("definition", "")).strip(),
                           tuple(str(x) for x in entry.get("examples") or []))


def _rule(entry: dict, path: Path, labels: Sequence[str]) -> Rule:
    rule_id = str(entry.get("id", "")) if isinstance(entry, dict) else ""
    if not rule_id:
        raise ValueError(f"{path}: every rule needs an 'id' such as R1.")
    pair = entry.get("pair") or []
    unknown = [p for p in pair if p not in labels]
    if len(set(pair)) != 2 or unknown:
        raise ValueError(f"{path}: rule {rule_id} must name two different labels in 'pair' "
                         f"from {list(labels)}; got {pair}.")
    examples = tuple((str(e.get("text", "")), str(e.get("label", "")))
                     for e in entry.get("examples") or [] if isinstance(e, dict))
    return Rule(rule_id, frozenset(pair), str(entry.get("title", "")).strip(),
                str(entry.get("rule", "")).strip(), examples)


def _check_unique(values: Sequence[str], path: Path, what: str) -> None:
    seen = {v for v in values if values.count(v) > 1}
    if seen:
        raise ValueError(f"{path}: repeated {what} {sorted(seen)}; each must be unique.")
