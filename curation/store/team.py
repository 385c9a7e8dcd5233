"""Team mode: ``members`` and their roles, the role checks made inside write transactions, and
the ``audit`` log of every write that is not signed in its own table."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curation.messages import format_list
from curation.store.database import (
    AccessError,
    Database,
    _check_storable,
    _from_json,
    _to_json,
)
from curation.store.tables import _audit, _members, _utcnow

logger = logging.getLogger(__name__)

#: Roles of team mode: an annotator records decisions under their own name; a lead also
#: exports, retrains and manages members.
ROLES = ("annotator", "lead")


#: What the audit log records (:meth:`Project.audit`); decisions and augmentations are signed in
#: their own tables.
AUDIT_ACTIONS = ("create", "import", "label_set", "member", "member_removed", "run", "export",
                 "cancel", "schema", "decisions_import")


#: Each user action and the role it needs in team mode ("annotator": any member; a lead has every
#: role). The one table of role rules: the store checks it inside its writes, the workspace and
#: job functions before they compute (:meth:`Team.require`), and the pages and command lines ask
#: it through :mod:`actions.access` (``may``, ``require``). In local mode anyone may do anything.
NEEDS: dict[str, str] = {
    "import annotations": "lead",
    "import review decisions": "lead",
    "replace stored labels": "lead",
    "change the label set": "lead",
    "add members or change roles": "lead",
    "remove members": "lead",
    "take the schema back": "lead",
    "export splits": "lead",
    "export the curated data for augmenting": "lead",
    "retrain and compare": "lead",
    "resume a training job": "lead",
    "cancel a training job": "lead",
    "fine-tune the review queue's model": "lead",
    "run an experiment": "lead",
    "build the review queue": "annotator",
    "measure the review queue": "annotator",
    "start a run": "annotator",
    "cache embeddings": "annotator",
    "decide": "annotator",
    "augment": "annotator",
    "save augmented rows": "annotator",
    "remove augmented rows": "annotator",
}


def needed(action: str) -> str:
    """The role ``action`` needs in team mode (ValueError naming the actions for an unknown one)."""
    if action not in NEEDS:
        raise ValueError(f"unknown action {action!r}; the actions are {', '.join(NEEDS)}.")
    return NEEDS[action]


def _role_phrase(role: str | None) -> str:
    return f"an {role}" if role == "annotator" else (f"a {role}" if role else "not a member")


def _check_role(conn: Connection, name: str | None, role: str, *, to: str) -> None:
    """In team mode, refuse (:class:`AccessError`) unless ``name`` has ``role`` (a lead has both);
    inside the caller's transaction, so the check and the write see the same members."""
    roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
    if not roles:
        return
    have = roles.get(name) if name else None
    if have == "lead" or (have is not None and have == role):
        return
    who = f"{name!r} is {_role_phrase(have)}" if name else "no one is signed in"
    raise AccessError(f"only {'a lead' if role == 'lead' else 'a member'} can {to} in this "
                      f"team project; {who}. Sign in as a member (see README: Team mode), "
                      "or ask a lead.")


def _log(conn: Connection, actor: str | None, action: str, **detail: Any) -> None:
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; use one of {list(AUDIT_ACTIONS)}.")
    conn.execute(_audit.insert().values(actor=actor or None, action=action,
                                        detail=_to_json(detail, "audit detail"),
                                        created_at=_utcnow()))


def _require_member(conn: Connection, reviewer: str) -> None:
    """In team mode a decision is signed by a member (annotator or lead)."""
    members = [n for (n,) in conn.execute(sa.select(_members.c.name)).all()]
    if members and reviewer not in members:
        raise AccessError(f"{reviewer!r} is not a member of this team project, so cannot record "
                          f"decisions; members are {format_list(sorted(members))}. Ask a lead to "
                          "add you.")


class Team(Database):
    """Members, roles and the audit log (a project with members is in team mode)."""

    def members(self) -> pd.DataFrame:
        """Team members (``name, role, added_by, created_at``), by name; empty in local mode."""
        return self._table_frame(_members, _members.c.name)

    @property
    def team_mode(self) -> bool:
        """True once the project has members: decisions, exports and retraining then need one."""
        with self._read() as conn:
            return conn.execute(sa.select(_members.c.name).limit(1)).first() is not None

    def role(self, name: str | None) -> str | None:
        """The member's role, or None for a name that is not a member (or None)."""
        if not name:
            return None
        with self._read() as conn:
            return conn.execute(sa.select(_members.c.role).where(_members.c.name == name)).scalar()

    def set_member(self, name: str, role: str, *, actor: str | None) -> None:
        """Add a member or change their role.

        The first member must be a ``lead`` (added by anyone: that starts team mode); after
        that only a lead (``actor``) may add members or change roles, and the last lead cannot
        be demoted.

        Raises
        ------
        ValueError
            On a blank name or an unknown role.
        AccessError
            When ``actor`` is not a lead of a project that has members.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a member needs a non-empty name (the name they sign in with).")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {list(ROLES)}.")
        name = name.strip()
        _check_storable(name, "the member name")
        with self._write() as conn:
            roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
            if not roles and role != "lead":
                raise ValueError(f"the first member must be a lead (who can then add annotators); "
                                 f"add {name!r} with role='lead', or add a lead first.")
            if roles and roles.get(actor) != "lead":
                raise AccessError(f"only a lead can add members or change roles; {actor!r} is "
                                  f"{_role_phrase(roles.get(actor))}.")
            if roles.get(name) == "lead" and role != "lead" and list(roles.values()).count("lead") == 1:
                raise ValueError(f"{name!r} is the project's only lead; make someone else a lead first.")
            if name in roles:
                conn.execute(_members.update().where(_members.c.name == name).values(role=role))
            else:
                conn.execute(_members.insert().values(name=name, role=role, added_by=actor or name,
                                                      created_at=_utcnow()))
            _log(conn, actor or name, "member", name=name, role=role, before=roles.get(name))
        logger.info("member %r is now %s (by %r)", name, role, actor)

    def remove_member(self, name: str, *, actor: str | None) -> None:
        """Remove a member (a lead's act); the last lead can only go when no one else is left."""
        with self._write() as conn:
            roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
            if roles.get(actor) != "lead":
                raise AccessError(f"only a lead can remove members; {actor!r} is "
                                  f"{_role_phrase(roles.get(actor))}.")
            if name not in roles:
                raise ValueError(f"{name!r} is not a member; members are {format_list(sorted(roles))}.")
            if roles[name] == "lead" and list(roles.values()).count("lead") == 1 and len(roles) > 1:
                raise ValueError(f"{name!r} is the only lead; make someone else a lead first.")
            conn.execute(_members.delete().where(_members.c.name == name))
            _log(conn, actor, "member_removed", name=name, role=roles[name])
        logger.info("member %r removed (by %r)", name, actor)

    def require(self, actor: str | None, action: str) -> None:
        """In team mode, refuse (:class:`AccessError`) unless ``actor`` may do ``action``
        (:data:`NEEDS`); in local mode this allows everything."""
        self.require_role(actor, needed(action), to=action)

    def require_role(self, name: str | None, role: str, *, to: str) -> None:
        """In team mode, refuse (:class:`AccessError`) unless ``name`` has ``role`` (a lead has both).

        ``to`` says what was attempted, for the message. In local mode this allows everything.
        """
        with self._read() as conn:
            _check_role(conn, name, role, to=to)

    def log(self, actor: str | None, action: str, **detail: Any) -> None:
        """Append a row to the audit log, for a write that happens outside the database (an
        export, a cancelled job). Writes inside it log themselves."""
        with self._write() as conn:
            _log(conn, actor, action, **detail)

    def audit(self) -> pd.DataFrame:
        """The audit log, oldest first: ``audit_id, actor, action, detail`` (a dict), ``created_at``.

        One row per write to the project but decisions and augmentations, which are signed in
        their own tables: project creation, imports (with what they added or replaced), label
        set changes, member changes and removals, runs started, exports and cancelled jobs.
        ``actor`` is None where no one was signed in (local mode).
        """
        frame = self._table_frame(_audit, _audit.c.audit_id)
        frame["detail"] = pd.Series([_from_json(v) for v in frame["detail"]], index=frame.index,
                                    dtype=object)
        return frame

