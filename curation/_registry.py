"""Registries of pluggable classes (flaggers, augmenters): one decorator shape for both."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(registry: dict[str, Any], cls: Any, attribute: str, what: str) -> Any:
    """Put ``cls`` into ``registry`` under ``getattr(cls, attribute)``; refuse a clash.

    >>> reg = {}
    >>> class A: name = "a"
    >>> register(reg, A, "name", "plugin") is A, sorted(reg)
    (True, ['a'])
    """
    key = getattr(cls, attribute, None)
    if not key:
        raise ValueError(f"{cls.__name__} needs a class attribute {attribute!r} to be registered.")
    if key in registry and registry[key] is not cls:
        raise ValueError(f"a {what} named {key!r} is already registered "
                         f"({registry[key].__name__}); pick another {attribute}.")
    registry[key] = cls
    return cls
