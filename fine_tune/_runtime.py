"""Where and how a run trains: CPU or GPU, precision, number of processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from fine_tune.config import Precision, TrainConfig

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """Where and how the run trains, decided once from the config and the machine."""

    use_cpu: bool
    kind: str  # "cpu", "cuda" or "mps"
    precision: Precision
    world_size: int

    @property
    def device(self) -> torch.device:
        """The device of a single-process run (``cuda`` is the current GPU)."""
        return torch.device(self.kind)

    @classmethod
    def plan(cls, config: TrainConfig) -> Runtime:
        cuda = torch.cuda.is_available()
        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        if config.device == "cuda" and not cuda:
            raise ValueError("TrainConfig.device='cuda' but no CUDA GPU is visible; use "
                             "device=None (automatic) or 'cpu'.")
        if config.device == "mps" and not mps:
            raise ValueError("TrainConfig.device='mps' but Apple's MPS is not available; use "
                             "device=None (automatic) or 'cpu'.")
        use_cpu = config.device == "cpu" or (not cuda and config.device != "mps")
        kind = "cpu" if use_cpu else ("mps" if config.device == "mps" else "cuda")
        world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
        return cls(use_cpu, kind, config.resolved_precision(kind), world_size)
