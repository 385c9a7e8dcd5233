"""Altair charts for the app pages (no Streamlit here, so they can be tested alone)."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

__all__ = ["coefficient_chart", "gauge", "kappa_heatmap"]

_GOOD, _BAD, _TRACK = "#2e7d32", "#c62828", "#e0e0e0"


def gauge(value: float, target: float, *, low: float, high: float, title: str) -> alt.LayerChart:
    """A half-circle gauge from 0 to 1: the value, its confidence interval and the target tick."""
    value_c = min(max(value, 0.0), 1.0)

    def angle(x: float) -> float:
        return -math.pi / 2 + math.pi * min(max(x, 0.0), 1.0)

    color = _GOOD if value >= target else _BAD
    arcs = pd.DataFrame([
        {"part": "scale", "start": angle(0), "end": angle(1), "color": _TRACK, "r0": 70, "r1": 110},
        {"part": "value", "start": angle(0), "end": angle(value_c), "color": color, "r0": 70, "r1": 110},
        {"part": "95% CI", "start": angle(low), "end": angle(high), "color": "#555555", "r0": 112, "r1": 118},
        {"part": "target", "start": angle(target) - 0.012, "end": angle(target) + 0.012,
         "color": "#000000", "r0": 62, "r1": 124},
    ])
    base = alt.Chart(arcs).mark_arc().encode(
        theta=alt.Theta("start:Q", scale=None), theta2="end:Q",
        radius=alt.Radius("r0:Q", scale=None), radius2="r1:Q",
        color=alt.Color("color:N", scale=None), tooltip=["part:N"])
    label = alt.Chart(pd.DataFrame([{"text": f"{value:.3f}"}])).mark_text(
        fontSize=28, fontWeight="bold", dy=-20, color=color).encode(text="text:N")
    sub = alt.Chart(pd.DataFrame([{"text": f"target {target:.2f}"}])).mark_text(
        fontSize=13, dy=8).encode(text="text:N")
    return alt.layer(base, label, sub).properties(width=260, height=150, title=title)


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


def kappa_heatmap(pairwise: pd.DataFrame) -> alt.LayerChart:
    """Cohen's kappa for every annotator pair (both triangles), with the shared-item count."""
    both = pd.concat([pairwise, pairwise.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
    names = sorted(set(both["a"]))
    scale = alt.Scale(scheme="redyellowgreen", domain=[-0.2, 1.0])
    x = alt.X("a:N", title=None, sort=names, axis=alt.Axis(labelAngle=0, orient="top"))
    y = alt.Y("b:N", title=None, sort=names)
    cells = alt.Chart(both).mark_rect().encode(
        x=x, y=y, color=alt.Color("kappa:Q", scale=scale, title="kappa"),
        tooltip=["a", "b", alt.Tooltip("kappa:Q", format=".3f"), alt.Tooltip("n:Q", title="shared items")])
    layers = [cells]
    if len(names) <= 15:  # small crowds: print the value in each cell
        layers.append(alt.Chart(both).mark_text(fontSize=12).encode(
            x=x, y=y, text=alt.Text("kappa:Q", format=".2f")))
    step = 40 if len(names) <= 15 else max(4, 600 // len(names))
    return alt.layer(*layers).properties(height=step * len(names), width=step * len(names))
