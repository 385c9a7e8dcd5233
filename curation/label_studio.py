"""A Label Studio round trip: the review queue out as tasks, the completed tasks back in as
review decisions.

:func:`review_tasks` turns the open review queue into Label Studio tasks (JSON import format):
each task's ``data`` holds ``item_id``, ``text`` (and ``text_pair``), the labels the
annotators gave and why the item was flagged; its ``predictions`` hold the suggested label (the
flag's, else the consensus) scored with the item's review priority, so Label Studio pre-selects
it and can sort by it. :func:`labeling_config` is the matching labelling interface (XML, every
value escaped). :func:`completed_decisions` reads Label Studio's JSON export of those tasks back
into decisions, one per completed annotation, signed with the annotator's Label Studio name (the
email, else ``label-studio-user-<id>``): ``keep`` when they chose the label the item has,
``set_label`` otherwise; :meth:`curation.store.Project.import_decisions` stores them.

Formats: https://labelstud.io/guide/tasks (import) and https://labelstud.io/guide/export (JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import pandas as pd

from curation.schema import ANNOTATOR, ITEM, LABEL, TEXT, TEXT_PAIR, has_pairs

__all__ = ["MODEL_VERSION", "completed_decisions", "labeling_config", "review_tasks"]

#: The ``model_version`` of the predictions we write (Label Studio groups predictions by it).
MODEL_VERSION = "curation-review-queue"
#: Names in the labelling config: the choices' control and the text it labels.
_CONTROL, _TARGET = "label", "text"


def review_tasks(frame: pd.DataFrame, queue: pd.DataFrame, consensus: pd.Series, *,
                 flags: pd.DataFrame | None = None, decided: Sequence[str] = ()) -> list[dict]:
    """The open items of the review queue as Label Studio tasks, in queue order.

    Parameters
    ----------
    frame : DataFrame
        The long annotation frame (the texts and every annotator's label).
    queue : DataFrame
        ``item_id, priority`` (and ``suggested_label``), in review order.
    consensus : Series
        ``item_id -> label`` the item has now (its curated label).
    flags : DataFrame, optional
        ``item_id, kind, reason`` of the flags run: the reasons shown with each task.
    decided : sequence of str
        Items a reviewer already decided: left out.
    """
    first = frame.drop_duplicates(ITEM).set_index(ITEM)
    votes = frame.groupby(ITEM, sort=False)[[ANNOTATOR, LABEL]].apply(
        lambda g: ", ".join(f"{a}: {b}" for a, b in zip(g[ANNOTATOR], g[LABEL])))
    reasons: dict[str, str] = {}
    if flags is not None and len(flags):
        reasons = flags.groupby(ITEM, sort=False).apply(
            lambda g: "; ".join(f"{k}: {r}" for k, r in zip(g["kind"], g["reason"])),
            include_groups=False).to_dict()
    skip = set(decided)
    tasks = []
    for row in queue.itertuples(index=False):
        item = str(row.item_id)
        if item in skip or item not in first.index:
            continue
        suggested = getattr(row, "suggested_label", None)
        label = suggested if isinstance(suggested, str) and suggested else consensus.get(item)
        data = {"item_id": item, TEXT: str(first.at[item, TEXT])}
        if has_pairs(frame):
            data[TEXT_PAIR] = str(first.at[item, TEXT_PAIR])
        data.update(current_label=str(consensus.get(item, "")), votes=str(votes.get(item, "")),
                    flag_reasons=reasons.get(item, "not flagged: in the queue by doubt"))
        task: dict[str, Any] = {"data": data}
        if isinstance(label, str):
            task["predictions"] = [{
                "model_version": MODEL_VERSION, "score": float(row.priority),
                "result": [{"from_name": _CONTROL, "to_name": _TARGET, "type": "choices",
                            "value": {"choices": [label]}}]}]
        tasks.append(task)
    return tasks


def labeling_config(labels: Sequence[str], *, pairs: bool = False) -> str:
    """The Label Studio labelling interface for :func:`review_tasks` (one choice per item).

    >>> print(labeling_config(["a&b", "c"]))  # doctest: +NORMALIZE_WHITESPACE
    <View>
      <Text name="text" value="$text"/>
      <Header value="Labels given"/>
      <Text name="votes" value="$votes"/>
      <Header value="Why it was flagged"/>
      <Text name="flag_reasons" value="$flag_reasons"/>
      <Choices name="label" toName="text" choice="single" showInLine="true">
        <Choice value="a&amp;b"/>
        <Choice value="c"/>
      </Choices>
    </View>
    """
    lines = ["<View>", '  <Text name="text" value="$text"/>']
    if pairs:
        lines += ['  <Header value="Second text"/>', '  <Text name="text_pair" value="$text_pair"/>']
    lines += ['  <Header value="Labels given"/>', '  <Text name="votes" value="$votes"/>',
              '  <Header value="Why it was flagged"/>',
              '  <Text name="flag_reasons" value="$flag_reasons"/>',
              f'  <Choices name="{_CONTROL}" toName="{_TARGET}" choice="single" showInLine="true">']
    lines += [f"    <Choice value={quoteattr(str(label))}/>" for label in labels]
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines)


def completed_decisions(completed: pd.DataFrame, current: Mapping[str, str], *,
                        source: str = "Label Studio") -> pd.DataFrame:
    """Decisions from Label Studio's completed tasks, read by
    :func:`curation.io.load_annotations` (format ``label-studio``; ``item_id`` from each task's
    data): one per annotation, signed by its annotator, ``keep`` when the chosen label is the
    item's ``current`` label, else ``set_label``.

    >>> done = pd.DataFrame({"item_id": ["1", "2"], "annotator_id": ["ann@x.org", "7"],
    ...                      "label": ["pos", "neg"]})
    >>> completed_decisions(done, {"1": "pos", "2": "pos"})[["item_id", "reviewer", "action", "new_label"]].values.tolist()
    [['1', 'ann@x.org', 'keep', None], ['2', 'label-studio-user-7', 'set_label', 'neg']]
    """
    rows = []
    for r in completed.itertuples(index=False):
        item, label = str(getattr(r, ITEM)), str(getattr(r, LABEL))
        who = str(getattr(r, ANNOTATOR))
        reviewer = who if not who.isdigit() else f"label-studio-user-{who}"
        now = current.get(item)
        keep = now is not None and label == now
        rows.append({ITEM: item, "reviewer": reviewer, "action": "keep" if keep else "set_label",
                     "new_label": None if keep else label, "current_label": now,
                     "note": f"from {source}"})
    return pd.DataFrame(rows, columns=[ITEM, "reviewer", "action", "new_label", "current_label",
                                       "note"], dtype=object)
