"""The application layer: one function per user action, for the pages and the command lines.

A page gathers widget values, calls one function here per action, and renders what comes back;
it imports nothing from :mod:`curation` or :mod:`fine_tune` itself. Every role rule is in
:mod:`actions.access` (the table :data:`~actions.access.NEEDS`), checked here before the library
is called. The import direction is one-way: ``app_pages`` -> ``actions`` -> ``fine_tune`` ->
``curation``; neither library package imports this one.

Modules, by what the user is doing:

- :mod:`actions.projects`: the offered projects, opening, creating, importing, members
- :mod:`actions.agreement`: the agreement report
- :mod:`actions.review`: the review queue (a :class:`~actions.review.QueueView`), decide, undo
- :mod:`actions.augment`: candidates, checks, saving and removing augmented rows
- :mod:`actions.export`: the curated dataset, its change log, the export
- :mod:`actions.jobs`: retrain-and-compare jobs and what their kept models show
- :mod:`actions.experiments`: multi-task and continual-learning comparisons
"""

from actions import agreement, augment, experiments, export, jobs, projects, review
from actions.access import NEEDS, AccessError, Identity, identity, may, require
from curation.messages import markdown_text

__all__ = ["NEEDS", "AccessError", "Identity", "agreement", "augment", "experiments", "export",
           "identity", "jobs", "markdown_text", "may", "projects", "require", "review"]
