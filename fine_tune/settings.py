"""Training settings that fit the data: the user's choices, the measured advice for the rest.

:func:`resolve_settings` measures the training data (rows, class balance, text lengths; see
:mod:`fine_tune.advice`) and fills every setting the user did not give from the advice, the
others from :class:`~fine_tune.config.TrainConfig`'s defaults. Each setting keeps where it came
from (``you``, ``advice`` or ``default``) and why, so a report can show the settings a result
was trained with and the reason for each.

Only settings that are safe to take without a person are applied automatically
(:data:`AUTO_SETTINGS`: epochs, learning rate, patience and metric of early stopping, class
weights, max length). A
different backbone or LoRA changes the model itself: such advice is shown in the reason of
that setting ("advice not applied") and left to the user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["AUTO_SETTINGS", "ResolvedSettings", "describe", "resolve_settings"]

#: Settings the advice may set without asking.
AUTO_SETTINGS = ("epochs", "learning_rate", "early_stopping_patience", "early_stopping_metric",
                 "class_weights", "max_length")
#: Settings shown with every result, advised or not.
SHOWN = ("model", "epochs", "learning_rate", "batch_size", "max_length", "class_weights",
         "early_stopping_patience", "early_stopping_metric", "lora", "precision", "freeze_layers")


@dataclass
class ResolvedSettings:
    """The config to train with, and for each setting its value, source and reason."""

    config: Any
    chosen: list[dict[str, Any]] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"config": {...}, "chosen": [{setting, value, source, reason}], "traits": {...}}``."""
        from fine_tune.config import jsonable

        config = self.config.to_dict() if hasattr(self.config, "to_dict") else dataclasses.asdict(self.config)
        return jsonable({"config": config, "chosen": self.chosen, "traits": self.traits})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResolvedSettings:
        """The inverse of :meth:`to_dict` (for a job that runs in another process)."""
        from fine_tune.config import TrainConfig

        return cls(TrainConfig(**d["config"]), list(d.get("chosen") or []), dict(d.get("traits") or {}))

    def lines(self) -> list[str]:
        """One line per setting: ``epochs = 13 (advice: ...)``."""
        return [describe(c) for c in self.chosen]


def describe(choice: Mapping[str, Any]) -> str:
    """``"epochs = 13 (advice: 553 rows give ...)"``, for a report or a page."""
    value = "bundled all-MiniLM-L6-v2" if choice["setting"] == "model" and choice["value"] is None \
        else choice["value"]
    reason = f": {choice['reason']}" if choice.get("reason") else ""
    return f"{choice['setting']} = {value} ({choice['source']}{reason})"


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") and hasattr(type(value), "__members__") else value


def _given_dict(given: Mapping[str, Any] | None, names: set[str]) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - names)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(names)}.")
    return {k: v for k, v in given.items() if v is not None}


def _as_given(config: Any) -> ResolvedSettings:
    """A whole config handed in: every setting is the caller's."""
    values = dataclasses.asdict(config)
    chosen = [{"setting": name, "value": _plain(values[name]), "source": "given", "reason": ""}
              for name in SHOWN if name in values]
    return ResolvedSettings(config, chosen, {})


def resolve_settings(frame: pd.DataFrame, given: Mapping[str, Any] | Any = None, *,
                     tokenizer: Any = None) -> ResolvedSettings:
    """The settings to train ``frame`` (``text``, ``label``) with.

    Parameters
    ----------
    frame : pandas.DataFrame
        The training data the advice measures (for retrain-and-compare, the curated side).
    given : mapping or TrainConfig, optional
        The settings the user chose (a mapping of ``TrainConfig`` field names; ``None`` values
        count as not chosen). A whole ``TrainConfig`` (or any dataclass config) is taken as it
        is, with no advice: the caller chose everything.
    tokenizer : callable, optional
        Counts tokens (default: the configured model's tokenizer).

    Returns
    -------
    ResolvedSettings

    Examples
    --------
    >>> class Tok:  # one token per word
    ...     def __call__(self, texts, truncation=False):
    ...         return {"input_ids": [t.split() for t in texts]}
    >>> frame = pd.DataFrame({"text": ["my card was stolen", "thanks a lot"] * 100,
    ...                       "label": ["fraud", "praise"] * 100})
    >>> s = resolve_settings(frame, {"learning_rate": 3e-5}, tokenizer=Tok())
    >>> s.config.epochs, s.config.learning_rate, s.config.max_length
    (20, 3e-05, 32)
    >>> [(c["setting"], c["source"]) for c in s.chosen][:3]
    [('model', 'default'), ('epochs', 'advice'), ('learning_rate', 'you')]
    """
    from fine_tune.advice import advise
    from fine_tune.config import TrainConfig

    if given is not None and dataclasses.is_dataclass(given) and not isinstance(given, type):
        return _as_given(given)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    mine = _given_dict(given, names)
    base = TrainConfig(**mine)
    advice = advise(frame, config=base, tokenizer=tokenizer)
    auto, noted = {}, {}
    for rec in advice.recommendations:
        if rec.setting is None:
            continue
        target = auto if rec.setting in AUTO_SETTINGS and rec.setting not in mine else noted
        target.setdefault(rec.setting, rec)
    config = dataclasses.replace(base, **{k: r.value for k, r in auto.items()})
    return ResolvedSettings(config, _chosen(config, mine, auto, noted), advice.traits)


def _chosen(config: Any, mine: dict[str, Any], auto: dict[str, Any],
            noted: dict[str, Any]) -> list[dict[str, Any]]:
    values = dataclasses.asdict(config)
    out = []
    for name in dict.fromkeys([*SHOWN, *mine, *noted]):
        rec, value = noted.get(name), _plain(values.get(name))
        if name in auto:
            out.append({"setting": name, "value": value, "source": "advice", "reason": auto[name].reason,
                        "advised": _plain(auto[name].value)})
            continue
        source = "you" if name in mine else "default"
        why = ""
        if rec is not None and rec.value != value:
            why = (f"the advice was {rec.value}: {rec.reason}" if name in mine else
                   f"advice not applied (a change of model is yours to make): {name} = "
                   f"{rec.value}, because {rec.reason}")
        entry = {"setting": name, "value": value, "source": source, "reason": why}
        if rec is not None:
            entry["advised"] = _plain(rec.value)
        out.append(entry)
    return out
