"""Who may do what: the app's one table of role rules, and the checks every action makes.

In local mode (a project without members) anyone may do anything under the name they give. In
team mode each action below needs a role; a lead has every role. Pages ask :func:`may` to grey
out a button; every action of this package calls :func:`require` before it acts. The store keeps
its own check inside the write's transaction for the acts that change shared data (imports, the
label set, runs, the embedding cache), so that a member removed between the check and the write
is still refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.store import AccessError, Project

__all__ = ["AccessError", "NEEDS", "Identity", "identity", "may", "require"]

#: Each user action and the role it needs in team mode ("annotator": any member).
NEEDS: dict[str, str] = {
    "import annotations": "lead",
    "replace stored labels": "lead",
    "add members or change roles": "lead",
    "remove members": "lead",
    "export splits": "lead",
    "export the curated data for augmenting": "lead",
    "retrain and compare": "lead",
    "resume a training job": "lead",
    "cancel a training job": "lead",
    "fine-tune the review queue's model": "lead",
    "take the schema back": "lead",
    "build the review queue": "annotator",
    "measure the review queue": "annotator",
    "decide": "annotator",
    "augment": "annotator",
    "save augmented rows": "annotator",
    "remove augmented rows": "annotator",
}


def _needed(action: str) -> str:
    if action not in NEEDS:
        raise ValueError(f"unknown action {action!r}; the actions are {', '.join(NEEDS)}.")
    return NEEDS[action]


def may(project: Project, name: str | None, action: str) -> bool:
    """Whether ``name`` may do ``action`` on ``project`` now (always, in local mode)."""
    needed = _needed(action)
    if not project.team_mode:
        return True
    role = project.role(name)
    return role == "lead" or (role is not None and needed == "annotator")


def require(project: Project, name: str | None, action: str) -> None:
    """:class:`AccessError` (a ``PermissionError``) naming who, what and how, unless :func:`may`."""
    project.require_role(name, _needed(action), to=action)


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
