"""Markdown and self-contained HTML renderings of a retrain-and-compare report.

Both renderers take a :class:`fine_tune.compare.CompareReport` or its ``to_dict()`` (for
example a stored ``report.json``). The report is first laid out as a list of blocks
(headings, paragraphs, tables, lists); each format then writes the same blocks.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["render_html", "render_markdown", "report_blocks"]

SIDES = ("before", "after")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f4f7; }
p.verdict { font-size: 1.1rem; padding: 0.75rem 1rem; border-left: 4px solid #2f6fdd;
            background: #eef4ff; }
p.warning { border-left-color: #d08700; background: #fff6e0; }
"""


def _as_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def _num(value: Any, digits: int = 3, *, sign: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return str(value)


def _mean_std(stats: dict[str, Any]) -> str:
    if stats.get("mean") is None:
        return "–"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _range(stats: dict[str, Any]) -> str:
    if stats.get("min") is None:
        return "–"
    return f"{stats['min']:.3f}–{stats['max']:.3f}"


# --- blocks ---------------------------------------------------------------------------------

def _headline_blocks(d: dict[str, Any]) -> list[tuple]:
    rows = [[side, d[side]["n_train"], len(d[side]["per_seed"]), _mean_std(d[side]["accuracy"]),
             _range(d[side]["accuracy"]), _mean_std(d[side]["macro_f1"]), _range(d[side]["macro_f1"])]
            for side in SIDES]
    seeds = ", ".join(str(s) for s in d["seeds"])
    blocks = [("h2", "Accuracy and macro-F1"),
              ("p", f"Test set: {d['test_size']} items, the same for both sides. Seeds: {seeds}. "
                    "Mean ± standard deviation and min–max over the seeds that finished."),
              ("table", ["side", "training rows", "runs", "accuracy", "accuracy min–max",
                         "macro-F1", "macro-F1 min–max"], rows)]
    if d.get("delta") is not None:
        low, high = d["delta_ci"]
        blocks.append(("p", f"Change in accuracy: {d['delta']:+.3f} (95% CI {low:+.3f} to "
                            f"{high:+.3f}; paired bootstrap over test items, {d['n_boot']} "
                            f"replicates, seeds {', '.join(map(str, d['paired_seeds']))}). "
                            f"Change in macro-F1: {_num(d['macro_f1_delta'], sign=True)}."))
        m = d["mcnemar"]
        blocks.append(("p", f"McNemar's exact test on the seeds' ensembles: b = {m['b']} test items "
                            f"before got right and after got wrong, c = {m['c']} the other way round; "
                            f"p = {m['p_value']:.3g}."))
    return blocks


def _per_seed_blocks(d: dict[str, Any]) -> list[tuple]:
    runs = {(side, r["seed"]): r for side in SIDES for r in d[side]["per_seed"]}
    rows = []
    for seed in d["seeds"]:
        for side in SIDES:
            r = runs.get((side, seed))
            if r is not None:
                rows.append([f"{side}, seed {seed}", _num(r["accuracy"]), _num(r["macro_f1"]),
                             _num(r.get("best_epoch"), 2), _num(r.get("train_seconds"), 1),
                             _num(r.get("samples_per_second"), 1)])
    return [("h2", "Per seed"),
            ("table", ["run", "accuracy", "macro-F1", "best epoch", "train seconds",
                       "samples / s"], rows)]


def _per_class_blocks(d: dict[str, Any]) -> list[tuple]:
    blocks: list[tuple] = []
    f1 = {side: d[side].get("per_class_f1") or {} for side in SIDES}
    if f1["before"] or f1["after"]:
        rows = []
        for label in d["labels"]:
            b, a = f1["before"].get(label), f1["after"].get(label)
            change = a - b if a is not None and b is not None else None
            rows.append([label, _num(b), _num(a), _num(change, sign=True)])
        blocks += [("h2", "Per-class F1 (ensemble of the seeds)"),
                   ("table", ["label", "before", "after", "change"], rows)]
    for side in SIDES:
        matrix = d[side].get("confusion") or []
        if matrix:
            blocks += [("h3", f"Confusion matrix, {side} (rows: true label, columns: predicted)"),
                       ("table", ["true / predicted"] + list(d["labels"]),
                        [[label] + list(row) for label, row in zip(d["labels"], matrix)])]
    return blocks


def _diagnosis_blocks(d: dict[str, Any]) -> list[tuple]:
    items = []
    for side in SIDES:
        for run, diag in zip(d[side]["per_seed"], d[side].get("diagnosis") or []):
            messages = diag.get("messages") or ([diag["summary"]] if diag.get("summary") else [])
            items.append(f"{side}, seed {run['seed']}: " + (" ".join(messages) or "no diagnosis."))
    return [("h2", "Loss curves, read for you"), ("ul", items)] if items else []


def _data_blocks(d: dict[str, Any]) -> list[tuple]:
    counts = {side: d[side]["class_counts"] for side in SIDES}
    rows = [[label, counts["before"].get(label, 0), counts["after"].get(label, 0)]
            for label in d["labels"]]
    rows.append(["total", d["before"]["n_train"], d["after"]["n_train"]])
    blocks = [("h2", "Training data (rows per class)"), ("table", ["label", "before", "after"], rows)]
    if d["after"].get("n_augmented"):
        blocks.append(("p", f"After includes {d['after']['n_augmented']} augmented rows, used for "
                            "training only (never for validation or test)."))
    return blocks


def _rules_blocks(d: dict[str, Any]) -> list[tuple]:
    rules = d.get("rules")
    if not rules:
        return []
    blocks: list[tuple] = [("h2", f"Post-processing rules ({rules.get('source') or 'rules'})")]
    rows = [[side, _num(rules[side]["accuracy_without"]), _num(rules[side]["accuracy_with"]),
             _num(rules[side]["accuracy_with"] - rules[side]["accuracy_without"], sign=True),
             rules[side]["n_overrides"]] for side in SIDES if side in rules]
    blocks.append(("table", ["side (seeds' ensemble)", "accuracy without rules", "with rules",
                             "change", "overrides"], rows))
    if "after" in rules:
        per_rule = [[rid, r["fired"], r["overrides"], r["helped"], r["hurt"], r["net"], r["reason"]]
                    for rid, r in rules["after"]["per_rule"].items()]
        blocks += [("h3", "Each rule on the test set (after side)"),
                   ("table", ["rule", "fired", "overrides", "helped", "hurt", "net", "reason"], per_rule)]
        overrides = [[o["row"], o["text"][:80], o["rule_id"], o["model_label"], o["rule_label"],
                      o["true_label"], o["effect"]] for o in rules["after"]["overrides"]]
        if overrides:
            blocks += [("h3", "Every override on the test set (after side)"),
                       ("table", ["test row", "text", "rule", "model", "rule set", "true", "effect"],
                        overrides)]
    return blocks


def _config_blocks(d: dict[str, Any]) -> list[tuple]:
    rows = [[key, value] for key, value in (d.get("config") or {}).items() if key != "seed"]
    rows.append(["seeds (one run per side each)", ", ".join(map(str, d["seeds"]))])
    rows.append(["validation_size", d.get("validation_size")])
    return [("h2", "Settings (the same for both sides)"), ("table", ["setting", "value"], rows)]


def report_blocks(report: Any) -> list[tuple]:
    """The report as blocks: ``("h1"|"h2"|"h3"|"p"|"verdict", text)``, ``("ul", [text])``,
    ``("table", headers, rows)``.

    Examples
    --------
    >>> report_blocks({"verdict": "v", "seeds": [], "before": {}, "after": {}})[:2]
    [('h1', 'Retrain and compare'), ('verdict', 'v')]
    """
    d = _as_dict(report)
    blocks: list[tuple] = [("h1", "Retrain and compare"), ("verdict", d["verdict"])]
    if not d["before"] and not d["after"]:
        return blocks
    if d.get("cancelled"):
        blocks.append(("p", "The comparison was cancelled: the numbers below cover only the runs "
                            "that finished."))
    for part in (_headline_blocks, _per_seed_blocks, _per_class_blocks, _rules_blocks,
                 _diagnosis_blocks, _data_blocks, _config_blocks):
        blocks += part(d)
    return blocks


# --- Markdown -------------------------------------------------------------------------------

def _md_cell(value: Any) -> str:
    text = "–" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: tuple) -> str:
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        return "#" * int(kind[1]) + " " + block[1]
    if kind == "verdict":
        return f"**Verdict:** {block[1]}"
    if kind == "ul":
        return "\n".join(f"- {_md_cell(item)}" for item in block[1])
    if kind == "table":
        headers, rows = block[1], block[2]
        lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        return "\n".join(lines)
    return block[1]


def render_markdown(report: Any) -> str:
    """The report as Markdown: verdict, tables, diagnosis, data and settings.

    Examples
    --------
    >>> print(render_markdown({"verdict": "Nothing yet.", "seeds": [], "before": {}, "after": {}}))
    # Retrain and compare
    <BLANKLINE>
    **Verdict:** Nothing yet.
    <BLANKLINE>
    """
    return "\n\n".join(_md_block(b) for b in report_blocks(report)) + "\n"


# --- HTML -----------------------------------------------------------------------------------

def _html_block(block: tuple) -> str:
    esc = html.escape
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        return f"<{kind}>{esc(block[1])}</{kind}>"
    if kind == "verdict":
        css = "verdict warning" if "no evidence" in block[1] or "Cancelled" in block[1] else "verdict"
        return f'<p class="{css}"><strong>Verdict:</strong> {esc(block[1])}</p>'
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{esc(str(item))}</li>" for item in block[1]) + "</ul>"
    if kind == "table":
        head = "".join(f"<th>{esc(str(h))}</th>" for h in block[1])
        body = "".join("<tr>" + "".join(f"<td>{esc('–' if c is None else str(c))}</td>" for c in row)
                       + "</tr>" for row in block[2])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<p>{esc(block[1])}</p>"


def render_html(report: Any) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, no external assets).

    Examples
    --------
    >>> page = render_html({"verdict": "A < B.", "seeds": [], "before": {}, "after": {}})
    >>> "A &lt; B." in page and page.startswith("<!DOCTYPE html>")
    True
    """
    body = "\n".join(_html_block(b) for b in report_blocks(report))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Retrain and compare</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
