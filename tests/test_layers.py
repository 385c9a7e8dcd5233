"""The import direction the README's "How it is built" describes, checked on the code itself:
pages and command lines -> actions -> fine_tune -> curation, each only downwards, and no private
name across packages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app_pages", "commands", "actions", "fine_tune", "curation")
#: What each layer may import of the project's own packages. The command lines may also call
#: the libraries' public functions for commands that only read and write files; every act on a
#: project goes through actions (test_commands_act_on_projects_only_through_actions).
ALLOWED = {"app_pages": {"app_pages", "actions"},
           "commands": {"commands", "actions", "fine_tune", "curation"},
           "actions": {"actions", "fine_tune", "curation"},
           "fine_tune": {"fine_tune", "curation"},
           "curation": {"curation"}}


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in a file, at any depth (lazy ones too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return out


def _files(package: str) -> list[Path]:
    """The package's modules; ``__main__.py`` (an entry point, run and never imported, which
    starts the command line one layer up) is left out."""
    return sorted(p for p in (ROOT / package).rglob("*.py")
                  if "demo" not in p.parts and p.name != "__main__.py")


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_downwards(package):
    wrong = []
    for path in _files(package):
        for line, module, _names in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", [*PACKAGES, "benchmarks"])
def test_no_private_name_crosses_a_package(package):
    """``from other_package._private import x`` or ``from other_package.mod import _x``: what
    another package keeps private stays there (its public modules are the contract)."""
    wrong = []
    for path in _files(package):
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] not in PACKAGES or parts[0] == package:
                continue
            private = [p for p in parts[1:] if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                wrong.append(f"{path.relative_to(ROOT)}:{line} takes {private} from {module}")
    assert not wrong, "\n".join(wrong)


def test_pages_never_hold_the_store_or_build_paths():
    """A page neither opens a store nor names a folder: no ``Project(``, no ``curation_home``."""
    wrong = []
    for path in _files("app_pages"):
        text = path.read_text(encoding="utf-8")
        for needle in ("Project(", "curation_home", ".require_role(", ".role("):
            if needle in text:
                wrong.append(f"{path.relative_to(ROOT)} uses {needle}")
    assert not wrong, "\n".join(wrong)


def test_commands_act_on_projects_only_through_actions():
    """The command lines open, change and check a project only through the application layer."""
    wrong = []
    for path in _files("commands"):
        text = path.read_text(encoding="utf-8")
        for needle in (r"\bProject\(", r"\.require_role\(", r"curation\.store import .*\bProject\b",
                       r"\bproject\.(set_member|remove_member|import_annotations|record_decision|"
                       r"save_augmentations|remove_augmentations|log)\("):
            if re.search(needle, text):
                wrong.append(f"{path.relative_to(ROOT)} matches {needle}")
    assert not wrong, "\n".join(wrong)


def test_entry_points_only_start_the_command_line():
    for package, cli in (("curation", "commands.curation"), ("fine_tune", "commands.fine_tune")):
        imports = {m for _, m, _ in _imports(ROOT / package / "__main__.py")}
        assert imports - {"sys"} == {cli}, (package, imports)


def test_the_application_layer_never_imports_streamlit():
    wrong = [f"{p.relative_to(ROOT)}:{line}" for p in _files("actions")
             for line, module, _ in _imports(p) if module.split(".")[0] == "streamlit"]
    assert not wrong


def test_every_access_rule_names_a_role():
    from actions.access import NEEDS

    assert set(NEEDS.values()) <= {"lead", "annotator"}
    assert NEEDS["decide"] == "annotator" and NEEDS["export splits"] == "lead"


def test_only_the_trainer_trains():
    """One training engine (fine_tune/engine.py): no module of the project calls ``backward()``
    or steps an optimizer or a gradient scaler itself; the Hugging Face Trainer does, for the
    classifier, the multi-task and continual runs and the learning-rate range test."""
    wrong = []
    for package in PACKAGES:
        for path in _files(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                owner = ast.unparse(node.func.value)
                if node.func.attr == "backward" or (
                        node.func.attr == "step" and re.search(r"optim|scaler", owner, re.I)):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}()")
    assert not wrong, "\n".join(wrong)


def test_role_rules_live_in_one_table():
    """Every role check names an action of curation.store.NEEDS (``require(actor, action)``,
    ``needed(action)``), never a role by hand: no ``require_role``/``_check_role`` call with a
    literal role outside the store's team module."""
    wrong = []
    for package in ("curation", "fine_tune", "actions", "commands", "app_pages"):
        for path in _files(package):
            if path.relative_to(ROOT).as_posix() == "curation/store/team.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("require_role", "_check_role") and any(
                        isinstance(a, ast.Constant) and a.value in ("lead", "annotator")
                        for a in node.args):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:80]}")
    assert not wrong, "\n".join(wrong)
    from curation.store import NEEDS
    from curation.store.team import needed

    with pytest.raises(ValueError, match="unknown action 'fly'"):
        needed("fly")
    assert {"start a run", "cache embeddings", "change the label set", "decide"} <= set(NEEDS)


def test_the_label_set_has_one_carrier():
    """No module reads or writes a frame's ``attrs`` but the loader (curation/io.py, which reports
    the file's declared labels and name there, read by ``declared_labels`` and ``loaded_from``):
    everything else takes the label set as an explicit ``labels=`` argument."""
    wrong = []
    for package in PACKAGES:
        for path in _files(package):
            if path.relative_to(ROOT).as_posix() == "curation/io.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "attrs":
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)
