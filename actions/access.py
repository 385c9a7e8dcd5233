"""Who may do what: the checks every action makes, on the app's one table of role rules.

The table is :data:`curation.store.NEEDS` (each user action -> the role it needs in team mode; a
lead has every role), kept in the store because the store enforces it too, inside the write's
transaction, for the acts that change shared data (imports, the label set, decisions, runs, the
embedding cache, members), so that a member removed between a check and the write is still
refused; the workspace and job functions check it before they compute. In local mode (a project
without members) anyone may do anything under the name they give. Pages ask :func:`may` to grey
out a button; every action of this package calls :func:`require` before it acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.store import NEEDS, AccessError, Project
from curation.store.team import needed

__all__ = ["AccessError", "NEEDS", "Identity", "identity", "may", "require"]


def may(project: Project, name: str | None, action: str) -> bool:
    """Whether ``name`` may do ``action`` on ``project`` now (always, in local mode)."""
    needed_role = needed(action)
    if not project.team_mode:
        return True
    role = project.role(name)
    return role == "lead" or (role is not None and needed_role == "annotator")


def require(project: Project, name: str | None, action: str) -> None:
    """:class:`AccessError` (a ``PermissionError``) naming who, what and how, unless :func:`may`."""
    project.require(name, action)


@dataclass(frozen=True)
class Identity:
    """Who is working on a project: their name (None: unknown), their role in team mode
    (None: not a member, or local mode) and whether the project is in team mode."""

    name: str | None
    role: str | None
    team_mode: bool

    @property
    def may_sign(self) -> bool:
        """Whether decisions can be signed with :attr:`name`: a member in team mode, any given
        name in local mode."""
        return bool(self.name) and (self.role is not None or not self.team_mode)


def identity(project: Project, name: str | None) -> Identity:
    """The :class:`Identity` of ``name`` on ``project``."""
    team = project.team_mode
    return Identity(name or None, project.role(name) if team and name else None, team)
