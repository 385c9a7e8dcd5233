"""Fine-tuning and retrain-and-compare for the curated data.

The public API:

- :class:`TrainConfig` (with :class:`Precision`, :class:`ClassWeights`): every setting, checked;
- :func:`train_classifier` -> :class:`TrainResult`: one model on the Hugging Face Trainer;
- :func:`lr_range_test` -> :class:`LRFinderResult`: the learning-rate range test;
- :class:`Diagnosis` / :func:`loss_chart`: loss curves read in words and drawn
  (``fine_tune.diagnose.diagnose``);
- :class:`CompareReport`: before vs after curation on the same test set
  (``fine_tune.compare.compare``; the submodules keep their names, so ``fine_tune.compare`` is
  the module, not the function);
- :func:`resolve_settings` -> :class:`ResolvedSettings`: the settings a data set gets unless
  the user sets them, each with its source and reason;
- :data:`VERDICTS`, :func:`seed_item_change` (the interval over seeds and test items the
  verdict rests on), :func:`learning_check` (did a run learn?), :class:`RunCache` (finished
  runs reused by content);
- :func:`compare_data` / :func:`project_compare_data`: the three data sets from a project;
- :func:`start_compare_job`, :func:`job_status`, :func:`cancel_job`, :func:`latest_job`:
  retrain-and-compare in a background process (what the app's button uses);
  :func:`latest_saved_models`: the before/after models the newest finished job kept;
- :func:`fine_tuned_probabilities` -> :class:`OutOfFold`: k fine-tuned fold models' out-of-fold
  class probabilities, the review queue's stronger model signal (``curation flag
  --model-probs``); :func:`start_out_of_fold_job` / :func:`latest_model_probs` run and read it
  in the background for the Review page;
- :func:`attention_for` -> :class:`Attention`, :func:`attention_chart`: which tokens a saved
  fine-tuned model attends to, per layer and head and by attention rollout.

Heavy imports (torch, transformers) happen on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "fine_tune.config",
    "Precision": "fine_tune.config",
    "ClassWeights": "fine_tune.config",
    "METRICS": "fine_tune.config",
    "train_classifier": "fine_tune.train",
    "TrainResult": "fine_tune.train",
    "load_model": "fine_tune.train",
    "lr_range_test": "fine_tune.lr_finder",
    "LRFinderResult": "fine_tune.lr_finder",
    "Diagnosis": "fine_tune.diagnose",
    "loss_chart": "fine_tune.diagnose",
    "CompareReport": "fine_tune.compare",
    "ResolvedSettings": "fine_tune.settings",
    "resolve_settings": "fine_tune.settings",
    "VERDICTS": "fine_tune.verdict",
    "learning_check": "fine_tune.verdict",
    "seed_item_change": "fine_tune.stats",
    "RunCache": "fine_tune.run_cache",
    "CompareData": "fine_tune.data",
    "compare_data": "fine_tune.data",
    "project_compare_data": "fine_tune.data",
    "start_compare_job": "fine_tune.jobs",
    "job_status": "fine_tune.jobs",
    "cancel_job": "fine_tune.jobs",
    "latest_job": "fine_tune.jobs",
    "latest_saved_models": "fine_tune.jobs",
    "start_out_of_fold_job": "fine_tune.jobs",
    "latest_model_probs": "fine_tune.jobs",
    "OutOfFold": "fine_tune.out_of_fold",
    "fine_tuned_probabilities": "fine_tune.out_of_fold",
    "Attention": "fine_tune.attention",
    "attention_for": "fine_tune.attention",
    "attention_chart": "fine_tune.attention",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fine_tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
