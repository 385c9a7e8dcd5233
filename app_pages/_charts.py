"""Altair charts for the app pages (no Streamlit here, so they can be tested alone)."""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

__all__ = ["coefficient_chart", "gauge", "kappa_heatmap", "kappa_histogram"]

_GOOD, _BAD, _TRACK = "#2e7d32", "#c62828", "#e0e0e0"


def gauge(value: float, target: float, *, low: float, high: float, title: str) -> alt.LayerChart:
    """A half-circle gauge from 0 to 1: the value, its confidence interval (the thin dark arc)
    and the target tick, each labelled: the scale at 0, 0.25, ..., 1 inside the track, the
    target outside it, and the interval in words under the value."""
    value_c = min(max(value, 0.0), 1.0)

    def angle(x: float) -> float:
        return -math.pi / 2 + math.pi * min(max(x, 0.0), 1.0)

    color = _GOOD if value >= target else _BAD
    arcs = pd.DataFrame([
        {"part": "scale 0 to 1", "start": angle(0), "end": angle(1), "color": _TRACK, "r0": 70,
         "r1": 110},
        {"part": f"value {value:.3f}", "start": angle(0), "end": angle(value_c), "color": color,
         "r0": 70, "r1": 110},
        {"part": f"95% CI {low:.3f}-{high:.3f}", "start": angle(low), "end": angle(high),
         "color": "#555555", "r0": 112, "r1": 118},
        {"part": f"target {target:.2f}", "start": angle(target) - 0.012,
         "end": angle(target) + 0.012, "color": "#000000", "r0": 62, "r1": 124},
    ])
    base = alt.Chart(arcs).mark_arc().encode(
        theta=alt.Theta("start:Q", scale=None), theta2="end:Q",
        radius=alt.Radius("r0:Q", scale=None), radius2="r1:Q",
        color=alt.Color("color:N", scale=None), tooltip=["part:N"])
    ticks = pd.DataFrame([{"theta": angle(x), "text": f"{x:g}"} for x in (0, 0.25, 0.5, 0.75, 1)])
    scale = alt.Chart(ticks).mark_text(radius=58, fontSize=10, color="#666666").encode(
        theta=alt.Theta("theta:Q", scale=None), text="text:N")
    target_label = alt.Chart(pd.DataFrame([{"theta": angle(target),
                                            "text": f"target {target:.2f}"}])).mark_text(
        radius=136, fontSize=11, fontWeight="bold").encode(
        theta=alt.Theta("theta:Q", scale=None), text="text:N")
    label = alt.Chart(pd.DataFrame([{"text": f"{value:.3f}"}])).mark_text(
        fontSize=28, fontWeight="bold", dy=-20, color=color).encode(text="text:N")
    sub = alt.Chart(pd.DataFrame([{"text": f"95% CI {low:.3f}-{high:.3f}"}])).mark_text(
        fontSize=12, dy=8).encode(text="text:N")
    return alt.layer(base, scale, target_label, label, sub).properties(
        width=300, height=170, title=title)


def coefficient_chart(coefficients: dict[str, float], ci: dict[str, tuple[float, float]],
                      target: float, names: dict[str, str]) -> alt.LayerChart:
    """Every coefficient with its 95% interval, against the target line."""
    rows = pd.DataFrame([{"coefficient": names[k], "value": v, "low": ci[k][0], "high": ci[k][1]}
                         for k, v in coefficients.items()])
    x = alt.X("value:Q", scale=alt.Scale(domain=[min(0.0, rows["low"].min()), 1.0]), title=None)
    y = alt.Y("coefficient:N", sort=None, title=None, axis=alt.Axis(labelLimit=220))
    points = alt.Chart(rows).mark_point(filled=True, size=90).encode(
        x=x, y=y, tooltip=["coefficient", alt.Tooltip("value:Q", format=".3f"),
                           alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")])
    bars = alt.Chart(rows).mark_rule(strokeWidth=2).encode(x="low:Q", x2="high:Q", y=y)
    rule = alt.Chart(pd.DataFrame([{"target": target}])).mark_rule(
        color=_BAD, strokeDash=[4, 3]).encode(x="target:Q")
    return alt.layer(bars, points, rule).properties(height=160)


def kappa_heatmap(pairwise: pd.DataFrame, *, min_overlap: int = 1,
                  order: list[str] | None = None) -> alt.LayerChart:
    """Cohen's kappa for every annotator pair given (both triangles), with the shared-item
    count. Pairs sharing fewer than ``min_overlap`` items are grey: their kappa is noise.
    ``order``: the annotators along the axes (default: sorted). Give it a few dozen
    annotators at most (:meth:`AgreementReport.busiest_pairs`): every pair is a cell."""
    both = pd.concat([pairwise, pairwise.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
    names = order or sorted(set(both["a"]))
    enough = both[(both["n"] >= min_overlap) & both["kappa"].notna()]
    scale = alt.Scale(scheme="redyellowgreen", domain=[-0.2, 1.0])
    x = alt.X("a:N", title=None, sort=names, axis=alt.Axis(labelAngle=-45, orient="top"),
              scale=alt.Scale(domain=names))
    y = alt.Y("b:N", title=None, sort=names, scale=alt.Scale(domain=names))
    tooltip = ["a", "b", alt.Tooltip("kappa:Q", format=".3f"),
               alt.Tooltip("n:Q", title="shared items")]
    few = alt.Chart(both).mark_rect(color="#e8e8e8").encode(x=x, y=y, tooltip=tooltip)
    cells = alt.Chart(enough).mark_rect().encode(
        x=x, y=y, color=alt.Color("kappa:Q", scale=scale, title="kappa"), tooltip=tooltip)
    layers = [few, cells]
    if len(names) <= 15:  # small crowds: print the value in each cell
        layers.append(alt.Chart(enough).mark_text(fontSize=12).encode(
            x=x, y=y, text=alt.Text("kappa:Q", format=".2f")))
    step = 40 if len(names) <= 15 else max(8, 600 // len(names))
    return alt.layer(*layers).properties(height=step * len(names), width=step * len(names))


def kappa_histogram(kappas: pd.Series) -> alt.Chart:
    """How the pairs' kappas spread (binned here, so the chart holds 20 rows at any crowd size)."""
    counts, edges = np.histogram(kappas.dropna().clip(-1, 1), bins=20, range=(-1, 1))
    bins = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "pairs": counts})
    return alt.Chart(bins).mark_bar().encode(
        x=alt.X("from:Q", bin="binned", title="Cohen's kappa", scale=alt.Scale(domain=[-1, 1])),
        x2="to:Q", y=alt.Y("pairs:Q", title="pairs"),
        tooltip=[alt.Tooltip("from:Q", format=".1f"), alt.Tooltip("to:Q", format=".1f"),
                 "pairs:Q"]).properties(height=160)
