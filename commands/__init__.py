"""The command lines, beside the app's pages at the top of the program.

``curation`` (:mod:`commands.curation`; also ``python -m curation``) works on annotation files
and projects; ``python -m fine_tune`` (:mod:`commands.fine_tune`) trains and compares. Every act
on a project, and every role rule, goes through the application layer (:mod:`actions`); commands
that only read and write files call the libraries' public functions.
"""
