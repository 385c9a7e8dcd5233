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
td { white-space: normal; }
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

def _change_text(d: dict[str, Any]) -> list[tuple]:
    """The interval the verdict rests on, what it is made of, and how fine it can see."""
    c = d.get("change")
    if not c:
        return []
    v = c["variance"]
    low, high = c["ci"]
    total = sum(v.values()) or 1.0
    parts = ", ".join(f"{name.replace('_', ' ')} {v[name] / total:.0%}"
                      for name in ("test_items", "seeds_before", "seeds_after"))
    blocks = [("p", f"Change in mean accuracy: {c['delta']:+.3f}, 95% interval {low:+.3f} to "
                    f"{high:+.3f} over seeds and test items (t with {c['df']:.1f} degrees of "
                    f"freedom, p = {c['p_value']:.2g}). Where the uncertainty comes from: {parts}. "
                    f"Changes smaller than about {(high - low) / 2:.3f} either way cannot be told "
                    "apart from noise in this comparison.")]
    f1 = d.get("macro_f1_change")
    if f1:
        blocks.append(("p", f"Change in mean macro-F1: {f1['delta']:+.3f}, 95% interval "
                            f"{f1['ci'][0]:+.3f} to {f1['ci'][1]:+.3f} (same method, items "
                            "resampled)."))
    return blocks


def _supporting_blocks(d: dict[str, Any]) -> list[tuple]:
    boot, m = d.get("item_bootstrap"), d.get("mcnemar")
    if not boot or not m:
        return []
    low, high = boot["ci"]
    return [("h3", "Supporting figures (over test items only; they treat each run as the model)"),
            ("ul", [f"Paired bootstrap over test items ({boot['n_boot']} replicates, seeds "
                    f"{', '.join(map(str, d['paired_seeds']))}): 95% interval {low:+.3f} to "
                    f"{high:+.3f}.",
                    f"McNemar's exact test on the seeds' ensembles: b = {m['b']} test items before "
                    f"got right and after got wrong, c = {m['c']} the other way round; "
                    f"p = {m['p_value']:.3g}."])]


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
    return blocks + _change_text(d) + _supporting_blocks(d)


def _learning_blocks(d: dict[str, Any]) -> list[tuple]:
    learning = d.get("learning") or {}
    items = []
    for side in SIDES:
        lrn = learning.get(side)
        if not lrn or lrn.get("learned"):
            continue
        items.append(f"The {side} model did not learn: {'; '.join(lrn['reasons'])}."
                     + (f" To fix it: {'; '.join(lrn['fixes'])}." if lrn.get("fixes") else ""))
    return [("h2", "Did each side learn?"), ("ul", items)] if items else []


def _notes_blocks(d: dict[str, Any]) -> list[tuple]:
    blocks: list[tuple] = []
    if d.get("size_notes"):
        blocks += [("h2", "What this test set cannot show (said before training)"),
                   ("ul", list(d["size_notes"]))]
    if d.get("reused"):
        items = [f"{r['side']}, seed {r['seed']}: reused from an earlier run with the same data, "
                 "test set and settings" + (f" ({r['origin'].get('folder')})"
                                            if (r.get("origin") or {}).get("folder") else "")
                 for r in d["reused"]]
        blocks += [("h2", "Runs reused, not trained again"), ("ul", items)]
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
    chosen = (d.get("settings") or {}).get("chosen")
    if chosen:
        rows = [[c["setting"], "bundled all-MiniLM-L6-v2" if c["setting"] == "model" and c["value"] is None
                 else c["value"], c["source"], c.get("reason") or ""] for c in chosen]
        headers = ["setting", "value", "from", "why"]
    else:
        rows = [[key, value] for key, value in (d.get("config") or {}).items() if key != "seed"]
        headers = ["setting", "value"]
    extra = [["seeds (one run per side each)", ", ".join(map(str, d["seeds"]))],
             ["validation_size", d.get("validation_size")]]
    rows += [r + [""] * (len(headers) - 2) for r in extra]
    return [("h2", "Settings (the same for both sides)"), ("table", headers, rows)]


def _verdict_block(d: dict[str, Any]) -> tuple:
    """``("verdict", code, reason)``; a report from before verdict codes holds only a sentence."""
    reason = d.get("verdict_reason")
    return ("verdict", d["verdict"], reason) if reason else ("verdict", "", d["verdict"])


def report_blocks(report: Any) -> list[tuple]:
    """The report as blocks: ``("h1"|"h2"|"h3"|"p", text)``, ``("verdict", code, reason)``,
    ``("ul", [text])``, ``("table", headers, rows)``.

    Examples
    --------
    >>> report_blocks({"verdict": "better", "verdict_reason": "why", "seeds": [], "before": {},
    ...                "after": {}})[:2]
    [('h1', 'Retrain and compare'), ('verdict', 'better', 'why')]
    """
    d = _as_dict(report)
    blocks: list[tuple] = [("h1", "Retrain and compare"), _verdict_block(d)]
    if not d["before"] and not d["after"]:
        return blocks
    if d.get("cancelled"):
        blocks.append(("p", "The comparison was cancelled: the numbers below cover only the runs "
                            "that finished."))
    for part in (_headline_blocks, _learning_blocks, _notes_blocks, _per_seed_blocks,
                 _per_class_blocks, _rules_blocks, _diagnosis_blocks, _data_blocks, _config_blocks):
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
        code, reason = block[1], block[2]
        return f"**Verdict: {code}** — {reason}" if code else f"**Verdict:** {reason}"
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
        code, reason = block[1], block[2]
        css = "verdict" if code in ("better", "worse") else "verdict warning"
        head = f"Verdict: {esc(code)}" if code else "Verdict:"
        return f'<p class="{css}"><strong>{head}</strong> {esc(reason)}</p>'
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
