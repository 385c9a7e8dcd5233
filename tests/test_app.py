"""One AppTest smoke test per page, on the bundled demo project in a temporary home."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    for var in ("CURATION_URL", "CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def shown(markdown: str) -> str:
    """A message as Markdown shows it: user data inside is escaped (app_pages._text.plain)."""
    return markdown.replace("\\", "").replace("\u2060", "")


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_project_page_opens_the_demo(home):
    at = start()
    assert at.title[0].value == "Project"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items"] == "553" and metrics["Annotators"] == "5" and metrics["Labels"] == "4"
    assert (home / "demo.sqlite").exists()
    from curation.store import migrate

    assert any(f"schema revision {migrate.head()}" in shown(c.value) for c in at.caption)


def test_agreement_page_shows_the_verdict(home):
    at = start()
    at.switch_page("app_pages/agreement.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Agreement"
    verdict = shown(at.error[0].value if at.error else at.success[0].value)
    assert "Fleiss' kappa" in verdict and "0.90 target" in verdict
    subheaders = [s.value for s in at.subheader]
    assert "Pairwise Cohen's kappa" in subheaders and "Items with the most disagreement" in subheaders
    at.slider[0].set_value(0.7).run()
    assert not at.exception
    assert "0.70 target" in shown(at.success[0].value if at.success else at.error[0].value)


def test_upload_bad_file_then_good_file(home):
    at = start()
    before = {m.label: m.value for m in at.metric}
    at.file_uploader[0].set_value(("bad.csv", b"item_id,txt,annotator_id,label\n1,a,x,praise\n",
                                   "text/csv")).run()
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    message = shown(at.error[0].value)
    assert "Nothing was imported" in message and "bad.csv" in message and "did you mean 'txt'" in message
    assert {m.label: m.value for m in at.metric} == before  # stored work untouched

    good = b"item_id,text,annotator_id,label\nnew-1,Thanks a lot!,zoe,praise\nnew-1,Thanks a lot!,yan,praise\n"
    at.file_uploader[0].set_value(("good.csv", good, "text/csv")).run()
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    assert "1 new items, 2 new annotations" in at.success[0].value
    after = {m.label: m.value for m in at.metric}  # at once, without a second click
    assert after["Items"] == "554" and after["Annotators"] == "7"


def test_agreement_page_at_244_real_workers_and_the_link_to_their_items(home):
    from conftest import dynasent_long
    from curation.store import Project

    with Project(home / "dynasent.sqlite") as project:
        project.import_annotations(dynasent_long(), source="dynasent round 2 dev")
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["project_name"] = "dynasent"
    at.run()
    at.switch_page("app_pages/agreement.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Annotators"] == "244"
    assert any("pairs share an item" in c.value for c in at.caption)
    lowest = next(c.value for c in at.caption if c.value.startswith("Lowest agreement"))
    assert "20\\+ labels" in lowest or "20+ labels" in lowest
    table = at.dataframe[-2].value  # per annotator: the 20 busiest and the outliers, not 244
    assert 20 <= len(table) < 244 and "outlier" in table.columns
    at.sidebar.slider(key="agreement-top-n").set_value(8).run()
    assert not at.exception, at.exception
    # from an annotator to the review queue filtered to their items
    who = at.selectbox(key="agreement-annotator").value
    next(b for b in at.button if b.label == "Open their items in Review").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert at.sidebar.multiselect(key="queue-annotators").value == [who]


def test_review_page_warns_when_the_texts_are_not_in_the_models_script(home):
    from curation.store import Project

    rows = [(f"z{i}", f"我的信用卡被盗了，请帮我冻结账户{i}", a, "投诉")
            for i in range(6) for a in ("x", "y")]
    with Project(home / "zh.sqlite") as project:
        project.import_annotations(pd.DataFrame(rows, columns=["item_id", "text", "annotator_id",
                                                               "label"]))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["project_name"] = "zh"
    at.run()
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    assert any("Han script" in shown(w.value) for w in at.warning)
    demo = _review(home)  # English texts: no such warning
    assert not any("script" in shown(w.value) for w in demo.warning)


def _review(home) -> AppTest:
    at = start()
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    return at


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def _pick(at: AppTest, label: str) -> AppTest:
    """Press the label button for ``label`` (its key is pick-<n>, n its place in the label set)."""
    next(b for b in at.button if b.key and b.key.startswith("pick-")
         and b.label.replace("\\", "") == label
         ).click().run()
    assert not at.exception, at.exception
    return at


def test_review_flow_decide_undo_reload(home):
    at = _review(home)
    assert at.title[0].value == "Review"
    _click(at, "Find items to review")
    first = at.session_state["review_item"]
    # without a reviewer name nothing is written
    _click(at, "Keep")
    assert "Enter your name" in at.error[0].value
    at.sidebar.text_input(key="reviewer").set_value("alice").run()
    _click(at, "Drop")
    assert at.session_state["review_item"] != first
    second = at.session_state["review_item"]
    from curation.store import Project

    with Project(home / "demo.sqlite") as project:
        labels = project.label_set()
    shown_label = next(m.value for m in at.markdown if m.value.startswith("Consensus: **"))
    current = next(lab for lab in labels if f"**{lab}**" in shown_label.replace("\\", ""))
    other = next(lab for lab in labels if lab != current)
    _pick(at, other)  # one press names a new label: set_label
    third = at.session_state["review_item"]
    assert third not in (first, second)
    shown_label = next(m.value for m in at.markdown if m.value.startswith("Consensus: **"))
    third_label = next(lab for lab in labels if f"**{lab}**" in shown_label.replace("\\", ""))
    _pick(at, third_label)  # the label it already has: recorded as keep
    # reload the app from scratch: the decisions are stored and signed
    again = AppTest.from_file(APP, default_timeout=120)
    again.run()
    with Project(home / "demo.sqlite") as project:
        log = project.decisions()
        assert log[["item_id", "reviewer", "action"]].values.tolist() == [
            [first, "alice", "drop"], [second, "alice", "set_label"], [third, "alice", "keep"]]
        assert log["new_label"].iloc[1] == other
        # what each decision changed or kept is in the log: the label the reviewer saw
        assert log["old_label"].tolist()[1:] == [current, third_label]
        assert log["old_label"].iloc[0] in labels
    # undo from anywhere: the last decision (on the third item) while the desk shows a fourth
    fourth = at.session_state["review_item"]
    assert fourth != third
    _click(at, "Undo my last decision")
    assert at.session_state["review_item"] == third  # back to the undone item
    with Project(home / "demo.sqlite") as project:
        assert third not in set(project.latest_decisions()["item_id"])
    # and again: the second item's set_label is now the newest in force
    _click(at, "Undo my last decision")
    assert at.session_state["review_item"] == second
    # the first item's drop, from "My recent decisions"
    recent = [b for b in at.button if b.key and b.key.startswith("undo-") and b.key[5:].isdigit()]
    assert len(recent) == 1
    recent[0].click().run()
    assert not at.exception, at.exception
    with Project(home / "demo.sqlite") as project:
        assert project.latest_decisions().empty
        assert project.decisions()["action"].tolist() == ["drop", "set_label", "keep", "undo",
                                                          "undo", "undo"]
    assert next(b for b in at.button if b.label == "Undo my last decision").disabled
    progress = at.get("progress")[0]
    assert progress.proto.text.startswith("0 of ") and "flagged items decided" in progress.proto.text


def test_review_page_searches_jumps_and_sorts(home):
    at = _review(home)
    _click(at, "Find items to review")
    queue = [at.session_state["review_item"]]
    with __import__("curation.store", fromlist=["Project"]).Project(home / "demo.sqlite") as project:
        texts = project.annotations().drop_duplicates("item_id").set_index("item_id")["text"]
    # jump to an item of the queue that is not first
    at.session_state["review_item"] = queue[0]
    _click(at, "Next")
    target = at.session_state["review_item"]
    _click(at, "Previous")
    at.text_input(key="jump-to").set_value(target).run()
    assert not at.exception, at.exception
    assert at.session_state["review_item"] == target
    # an id that is not in the queue: the reason, and the desk stays where it was
    at.text_input(key="jump-to").set_value("no-such-item").run()
    assert "there is no item 'no-such-item'" in at.error[0].value.replace("\\", "")
    assert at.session_state["review_item"] == target
    # search by a word of the target's text (in another case): the target is in the view
    word = max(texts[target].split(), key=len)
    at.sidebar.text_input(key="queue-search").set_value(word.upper()).run()
    assert not at.exception, at.exception
    view = [c for c in at.caption if c.value.startswith("Item ")][0].value
    n_view = int(view.split(" of ")[1].split()[0])
    matching = texts[texts.str.casefold().str.contains(word.casefold(), regex=False)]
    assert 1 <= n_view <= len(matching)
    # text that is no pattern: a bracket is searched for literally, no error
    at.sidebar.text_input(key="queue-search").set_value("([").run()
    assert not at.exception, at.exception
    assert any("Nothing left to review" in s.value for s in at.success)
    at.sidebar.text_input(key="queue-search").set_value("").run()
    # sort by item id: the desk opens on the smallest id of the queue
    at.sidebar.selectbox(key="queue-sort").set_value("item_id").run()
    assert not at.exception, at.exception
    first_by_id = at.session_state["review_item"]
    _click(at, "Next")
    assert at.session_state["review_item"] > first_by_id


def test_review_page_keeps_the_name_for_the_browser_session(home):
    at = _review(home)
    at.sidebar.text_input(key="reviewer").set_value("alice").run()
    assert at.query_params["name"] in ("alice", ["alice"])
    at.switch_page("app_pages/augment.py").run()  # another page asks the same person
    assert at.sidebar.text_input(key="augment-reviewer").value == "alice"
    # a reload: a new session with the address it had
    again = start()
    again.query_params["name"] = "alice"
    again.switch_page("app_pages/review.py").run()
    assert again.sidebar.text_input(key="reviewer").value == "alice"
    # an address with a name no one would type is ignored
    odd = start()
    odd.query_params["name"] = "a\u202eb"
    odd.switch_page("app_pages/review.py").run()
    assert odd.sidebar.text_input(key="reviewer").value == ""


def test_review_page_keeps_a_flagging_error_on_screen(home, monkeypatch):
    """A flagging run that cannot finish says why; the page does not rerun the message away."""
    import actions.review

    def cannot(project, **kwargs):
        raise ValueError("the embedding model at /models/x is not a folder; pick another")

    monkeypatch.setattr(actions.review, "flag_project", cannot)
    at = _click(_review(home), "Find items to review")
    assert "is not a folder; pick another" in at.error[0].value.replace("\\", "")
    assert any(b.label == "Find items to review" for b in at.button)  # and the user can try again


def test_review_page_measures_the_queue_on_the_gold_items(home):
    """The demo has gold labels for 150 items: the queue is scored next to the usual tools."""
    at = _review(home)
    _click(at, "Find items to review")
    expander = next(e for e in at.expander if e.label.startswith("How far to trust this queue"))
    assert "150 items with a known label" in expander.label
    _click(at, "Measure")
    table = at.dataframe[0].value
    assert table["ordering"].tolist()[:2] == ["review queue", "random order"]
    assert {"CROWDLAB (cleanlab)", "cleanlab find_label_issues", "Dawid-Skene posterior",
            "minority-vote share"} <= set(table["ordering"])
    summary = next(i.value for i in at.info if "wrong majority label" in i.value)
    assert "items with a known true label" in summary.replace("\\", "")


def test_curated_page_shows_changes_and_exports(home):
    from curation.store import Project

    at = start()
    with Project(home / "demo.sqlite") as project:
        project.record_decision("msg-0001", actor="lead", action="set_label", new_label="complaint",
                                note="R1: disputes a charge")
        project.record_decision("msg-0002", actor="lead", action="drop")
    at.switch_page("app_pages/curated.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["relabelled"] == "1" and metrics["dropped"] == "1" and metrics["consensus"] == "551"
    at.button(key="FormSubmitter:export-Export").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Wrote 7 files")  # 3 splits, 2 cards, 2 manifest files
    exported = home / "exports" / "demo" / "v0001"
    train = pd.read_csv(exported / "train.csv")
    assert "msg-0002" not in set(train["item_id"])
    assert len(at.get("download_button")) == 2  # this export, and v0001 under Past exports
    # most flagged items still open: said before exporting
    from curation.workspace import flag_project

    with Project(home / "demo.sqlite") as project:
        flag_project(project, use_model=False)
        project.record_decision("msg-0001", actor="lead", action="set_label",
                                new_label="fraud_alert")
    at.run()
    assert any("flagged items are still open" in w.value for w in at.warning)
    at.button(key="FormSubmitter:export-Export").click().run()
    assert not at.exception, at.exception
    assert (home / "exports" / "demo" / "v0002" / "manifest.json").is_file()
    assert (exported / "train.csv").is_file()  # v0001 kept
    # past exports: both listed, and what changed between them
    assert any("v0001 -> v0002: 0 items added, 0 removed, 1 relabelled" in i.value.replace("\\", "")
               for i in at.info)


def test_augment_page_generates_saves_and_survives_a_bad_model(home):
    from curation.store import Project

    at = start()
    at.switch_page("app_pages/augment.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Augment"
    # no path or model id is typed: models are offered by name, and none is offered yet
    assert [t.label for t in at.text_input] == ["Your name (required to save or remove augmented rows)"]
    at.selectbox[0].set_value("masked-lm").run()
    assert [shown(o) for o in at.selectbox(key="augment-mlm").options] == ["none offered"]
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    assert "needs a model this app offers" in shown(at.error[0].value)
    at.selectbox[0].set_value("back-translation").run()  # the same answer, not a model of None
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    assert "back-translation needs a model this app offers" in shown(at.error[0].value)
    at.selectbox[0].set_value("masked-lm").run()
    # the operator lists a fill-mask model that is not here: a message naming it, the page stays up
    (home / "projects.toml").write_text('[models]\nmissing = "no-such-org/no-such-model"\n')
    at.run()
    assert at.selectbox(key="augment-mlm").value == "missing"
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    assert "no-such-org/no-such-model" in shown(at.error[0].value)
    assert "CURATION_ALLOW_DOWNLOAD" in shown(at.error[0].value)
    # the offline glossary on the bundled bank-support terms
    at.selectbox[0].set_value("glossary").run()
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    picked = int(metrics["Picked"])
    assert int(metrics["Candidates tried"]) >= int(metrics["Passed every check"]) >= picked > 0
    # source and candidate readable whole, side by side (a table cell cuts them off)
    side = next(e for e in at.expander if e.label.startswith("Read source and candidate"))
    texts = [m.value for m in side.markdown]
    assert len(texts) == 2 * min(picked, 50) and all(texts)
    _click(at, f"Save {picked} ticked rows to the project")
    assert "enter your name" in at.error[0].value
    at.text_input(key="augment-reviewer").set_value("dana").run()
    _click(at, f"Save {picked} ticked rows to the project")
    assert not at.exception, at.exception
    assert at.success[0].value.startswith(f"Saved {picked} augmented rows")
    with Project(home / "demo.sqlite") as project:
        stored = project.augmentations()
    assert len(stored) == picked and set(stored["reviewer"]) == {"dana"}
    assert set(stored["method"]) == {"glossary"}


@pytest.mark.slow
def test_retrain_page_runs_a_job_and_shows_the_report(home, tiny_model):
    import time

    from curation.workspace import open_project
    from fine_tune.jobs import latest_job

    at = start()
    at.switch_page("app_pages/retrain.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test items"] == "150" and metrics["Augmented rows (train only)"] == "0"
    (home / "projects.toml").write_text(f'[models]\ntiny = "{tiny_model}"\n')
    at.run()  # before the form is filled in: a rerun would reset it
    inputs = {n.label: n for n in at.number_input}
    inputs["Epochs"].set_value(1)
    inputs["Seeds"].set_value(1)
    inputs["Batch size"].set_value(32)
    inputs["Max tokens"].set_value(32)
    # models and rules are offered by name (the operator's list) or uploaded; no path is typed
    assert not [t for t in at.text_input if "name" not in t.label.lower()
                and t.label != "Unfreeze schedule"]
    # the article's tuning tools are in the form, not only in the command line
    assert {"Gradient accumulation", "Early stopping patience", "Min. improvement",
            "LoRA rank"} <= set(inputs)
    assert [shown(o) for o in at.selectbox(key="retrain-rules").options] == [
        "none", "bank_support_rules", "finance_rules", "the file uploaded below"]
    at.selectbox(key="retrain-model").set_value("tiny")
    at.selectbox(key="retrain-rules").set_value("the file uploaded below")
    rules_yaml = (Path(APP).parent / "guidelines" / "bank_support_rules.yaml").read_bytes()
    at.file_uploader(key="retrain-rules-upload").set_value(
        ("my_rules.yaml", rules_yaml.replace(b"label: fraud_alert", b"label: fraud"), "text/yaml"))
    at.button(key="FormSubmitter:retrain-Retrain and compare").click().run()
    assert not at.exception, at.exception
    assert "Could not start" in at.error[0].value and "fraud" in shown(at.error[0].value)
    with open_project() as project:
        assert latest_job(project) is None  # a bad upload starts nothing
    at.file_uploader(key="retrain-rules-upload").set_value(("my_rules.yaml", rules_yaml, "text/yaml"))
    at.button(key="FormSubmitter:retrain-Retrain and compare").click().run()
    assert not at.exception, at.exception
    assert "Training" in [s.value for s in at.subheader]  # progress, not the form
    with open_project() as project:
        deadline = time.time() + 240
        while latest_job(project)["state"] in ("starting", "running") and time.time() < deadline:
            time.sleep(0.5)
        assert latest_job(project)["state"] == "done", latest_job(project)
    at.run()  # what a page reload shows
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert {"Accuracy before", "Accuracy after", "95% interval of the change",
            "p (seeds and items)"} <= set(metrics)
    # one seed: inconclusive by construction, and no interval or p-value is shown as a finding
    assert metrics["95% interval of the change"] == "–" and metrics["p (seeds and items)"] == "–"
    assert any(w.value.startswith("**Verdict: inconclusive.**") and "one run per side" in w.value
               for w in at.warning)
    assert "Latest run (#1)" in [s.value for s in at.subheader]
    with open_project() as project:
        chosen = {c["setting"]: c for c in latest_job(project)["report"]["settings"]["chosen"]}
    # what the user changed is theirs; what they left is the advice's
    assert chosen["epochs"]["source"] == "you" and chosen["epochs"]["value"] == 1
    assert chosen["model"]["source"] == "you"
    assert chosen["class_weights"]["source"] == "advice" and chosen["class_weights"]["value"] == "balanced"
    assert "Settings used" in [s.value for s in at.subheader]
    assert any(b.label == "Download report.md" for b in at.get("download_button"))
    # the rules' effect: with and without, per rule
    assert "Post-processing rules (rules.yaml)" in [shown(s.value) for s in at.subheader]
    with open_project() as project:
        job = latest_job(project)
    assert set(job["report"]["rules"]["after"]["per_rule"]) == {"P1", "P2", "P3"}
    assert (Path(job["folder"]) / "rules.yaml").is_file()  # the upload travels with its job
    # the after model was kept: its wrong test items, each with the attention view
    assert "Misclassified by the after model" in [s.value for s in at.subheader]
    with open_project() as project:
        after = latest_job(project)["models"]["after"]
    pred = pd.read_csv(Path(after) / "predictions.csv", keep_default_na=False)
    wrong = pred[pred["label"] != pred["predicted"]]
    assert any(c.value.startswith(f"{len(wrong)} of {len(pred)} test items wrong") for c in at.caption)
    if len(wrong):
        pick = next(s for s in at.selectbox if s.label == "Look at")
        assert len(pick.options) == len(wrong)
        assert any(f"predicts **{wrong['predicted'].iloc[0]}**" in shown(m.value) for m in at.markdown)
        assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_retrain_page_opens_with_the_advised_settings_and_says_why(home):
    from curation.workspace import open_project
    from fine_tune.data import project_compare_data
    from fine_tune.settings import resolve_settings

    at = start()
    at.switch_page("app_pages/retrain.py").run()
    assert not at.exception, at.exception
    with open_project() as project:
        after = project_compare_data(project).after
    advised = resolve_settings(after[["text", "label"]]).config
    inputs = {n.label: n.value for n in at.number_input}
    assert advised.epochs > 3 and inputs["Epochs"] == advised.epochs
    assert inputs["Learning rate"] == advised.learning_rate == 1e-4
    assert inputs["Max tokens"] == advised.max_length < 128
    assert next(s for s in at.selectbox if s.label == "Class weights").value == "balanced"
    # the reasons are in view, not folded away
    assert "Settings for this data" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "why" in d.value.columns)
    why = dict(zip(table["setting"], table["why"]))
    assert "optimizer updates an epoch" in why["epochs"] and "smallest" in why["class_weights"]
    # the demo's 150 test items cannot show a 2-point change: said before anything trains
    assert any("The test set has 150 items" in w.value for w in at.warning)


def test_user_data_in_a_sentence_stays_text():
    """Labels inside a reason are shown as typed: no image, link, heading or colour."""
    from app_pages._text import plain

    label = "![x](http://evil.example/p.png) [click](http://evil.example) # big :red[alert] $x$"
    shown = plain(f"it answered {label!r} for 99% of the test items")
    for unescaped in ("![", "](", "[click]", ":red[", "$x$"):
        assert unescaped not in shown
    # no autolink either: a word joiner follows every '://' (the text still reads the same)
    assert shown.replace("\\", "").count("://\u2060") == shown.replace("\\", "").count("://") == 2
    # every escape is a backslash before the character itself, so the text reads as typed
    assert shown.replace("\\", "").replace("\u2060", "") == f"it answered {label!r} for 99% of the test items"


def test_review_page_learns_the_order_after_twenty_decisions(home):
    from curation.store import Project

    at = _review(home)
    _click(at, "Find items to review")
    assert "after every 20 (a changed label" in " ".join(c.value for c in at.caption).replace("\\", "")
    with Project(home / "demo.sqlite") as project:
        from curation.workspace import load_queue

        for item in load_queue(project)["item_id"][:20]:
            project.record_decision(item, actor="alice", action="keep")
    at.run()
    assert not at.exception, at.exception
    said = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "Refitted on your first 20 decisions" in said and "of the 20 before it, 0 did" in said
    assert "from the next 20 on" in said  # the refitted order must first predict decisions
    at.sidebar.toggle(key="learn-order").set_value(False).run()
    assert "Refitted" not in " ".join(c.value for c in at.caption)


def test_review_page_goes_on_past_the_flagged_items(home):
    at = _review(home)
    _click(at, "Find items to review")
    flagged = at.get("progress")[0].proto.text
    at.sidebar.toggle(key="include-rest").set_value(True).run()
    assert not at.exception, at.exception
    text = at.get("progress")[0].proto.text
    assert "more by doubt" in text and text != flagged
    from curation.store import Project
    from curation.workspace import load_doubt, load_queue

    with Project(home / "demo.sqlite") as project:
        queue = load_queue(project, include_rest=True)
        only = load_queue(project)
        doubt = load_doubt(project)
    assert queue["item_id"].tolist()[:len(only)] == only["item_id"].tolist()
    # the learning order's features: every sign, for every item a reviewer can reach
    assert {"minority", "dawid_skene", "model", "crowdlab"} <= set(doubt.columns)
    assert set(queue["item_id"]) <= set(doubt.index) and doubt.stack().between(0, 1).all()
    tail = queue.iloc[len(only):]
    assert len(tail) > 0 and (tail["kinds"] == "").all()
    assert tail["priority"].is_monotonic_decreasing


def test_review_page_puts_ties_in_a_section_of_their_own(home):
    at = _review(home)
    _click(at, "Find items to review")
    section = at.radio(key="queue-section")
    ranked_item = at.session_state["review_item"]
    section.set_value("ties").run()
    assert not at.exception, at.exception
    tie_item = at.session_state["review_item"]
    assert tie_item != ranked_item
    assert any("No majority" in w.value for w in at.warning)
    from curation.store import Project
    from curation.aggregation import MajorityVote

    with Project(home / "demo.sqlite") as project:
        mv = MajorityVote().fit(project.annotations())
    assert mv.labels_[tie_item] is None and mv.labels_[ranked_item] is not None


@pytest.mark.slow
def test_review_page_flags_with_the_fine_tuned_folds(home, tiny_model):
    """The model signal: without fine-tuned folds the page offers to train them; with them,
    re-running the flags reads their probabilities."""
    import time

    from curation.store import Project
    from fine_tune.jobs import job_status, start_out_of_fold_job

    at = _review(home)
    at.selectbox(key="model-signal").set_value("fine-tuned").run()
    assert not at.exception, at.exception
    assert any(b.label == "Fine-tune 5 folds in the background" for b in at.button)
    assert next(b for b in at.button if b.label == "Re-run flags").disabled
    # the folds as the page's button starts them, on the tiny BERT (seconds, not minutes)
    with Project(home / "demo.sqlite") as project:
        start_out_of_fold_job(project, home / "folds", folds=2, config={
            "model": tiny_model, "epochs": 1, "batch_size": 32, "max_length": 32,
            "learning_rate": 1e-3, "early_stopping_patience": 0})
    deadline = time.time() + 240
    while job_status(home / "folds")["state"] not in ("done", "failed") and time.time() < deadline:
        time.sleep(0.5)
    assert job_status(home / "folds")["state"] == "done"
    at.run()
    assert any("553 items, 2 fine-tuned folds" in c.value.replace("\\", "") for c in at.caption)
    assert any(b.label == "Fine-tune again" for b in at.button)
    _click(at, "Re-run flags")
    with Project(home / "demo.sqlite") as project:
        run = project.get_run(int(project.latest_flags()["run_id"].iloc[0]))
    assert run["params"]["model_signal"] == "fine-tuned"
    # choosing another signal says the queue shown is still the fine-tuned one's
    at.selectbox(key="model-signal").set_value("embedding").run()
    assert any("comes from the signal 'Fine-tuned classifier" in c.value.replace("\\", "")
               for c in at.caption)
    # probabilities damaged on disk: a message naming the file and the fix, not an exception
    (home / "folds" / "probs.csv").write_text("nothing,here\n1,2\n")
    at.selectbox(key="model-signal").set_value("fine-tuned").run()
    assert not at.exception, at.exception
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("cannot be read" in e and "probs.csv" in e and "Fine-tune again" in e for e in errors), errors
    assert any(b.label == "Fine-tune 5 folds in the background" for b in at.button)


def test_project_page_shows_the_operators_file_limits_and_an_upload_over_one_is_refused(home, monkeypatch):
    monkeypatch.setenv("CURATION_MAX_ROWS", "2")
    at = start()
    table = next(df.value for df in at.dataframe if "set by the operator with" in df.value.columns)
    limits = dict(zip(table["limit"], table["value"]))
    assert limits["max_rows"] == "2" and limits["max_columns"] == "1,000"
    assert "CURATION_MAX_ROWS" in table["set by the operator with"].tolist()
    before = {m.label: m.value for m in at.metric}
    rows = "".join(f"n{i},text {i},zoe,praise\n" for i in range(3))
    at.file_uploader[0].set_value(("three.csv", ("item_id,text,annotator_id,label\n" + rows).encode(),
                                   "text/csv")).run()
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    message = shown(at.error[0].value)
    assert "Nothing was imported" in message and "over the limit of 2 (max_rows=2)" in message
    assert "CURATION_MAX_ROWS=N" in message
    assert {m.label: m.value for m in at.metric} == before


def test_augment_page_reads_an_uploaded_glossary_as_data(home):
    glossary = (Path(APP).parent / "guidelines" / "glossary_bank_support.yaml").read_bytes()
    at = start()
    at.switch_page("app_pages/augment.py").run()
    at.selectbox(key="augment-glossary").set_value("the file uploaded below").run()
    _click(at, "Generate candidates")
    assert "no file is uploaded" in shown(at.error[0].value)
    at.file_uploader(key="augment-glossary-upload").set_value(
        ("mine.yaml", b"groups: [[card]]\n", "text/yaml")).run()
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    assert "mine.yaml: group 1" in shown(at.error[0].value)
    at.file_uploader(key="augment-glossary-upload").set_value(("mine.yaml", glossary, "text/yaml")).run()
    _click(at, "Generate candidates")
    assert not at.exception, at.exception
    assert int({m.label: m.value for m in at.metric}["Picked"]) > 0


def test_review_page_note_only_waits_for_the_note(home):
    at = _review(home)
    _click(at, "Find items to review")
    at.sidebar.text_input(key="reviewer").set_value("alice").run()
    note_only = next(b for b in at.button if b.label == "Note only")
    assert note_only.disabled
    item = at.session_state["review_item"]
    at.text_input(key=f"note_{item}").set_value("ask the lead").run()
    assert not next(b for b in at.button if b.label == "Note only").disabled
    _click(at, "Note only")
    assert not at.exception, at.exception
    from curation.store import Project

    with Project(home / "demo.sqlite") as project:
        assert project.latest_decisions().set_index("item_id").at[item, "note"] == "ask the lead"


@pytest.mark.slow
def test_retrain_page_shows_the_range_test_and_uses_its_suggestion(home, tiny_model):
    import time

    from curation.workspace import open_project
    from fine_tune.jobs import job_status, start_lr_range_job

    at = start()  # builds the demo
    with open_project() as project:
        folder = home / "lr-job"
        start_lr_range_job(project, folder, config={"model": tiny_model, "max_length": 32},
                           num_steps=10)
    deadline = time.time() + 240
    while job_status(folder)["state"] in ("starting", "running") and time.time() < deadline:
        time.sleep(0.3)
    assert job_status(folder)["state"] == "done"
    at.switch_page("app_pages/retrain.py").run()
    assert not at.exception, at.exception
    suggested = job_status(folder)["report"]["suggested_lr"]
    assert any(c.value.startswith(f"Suggested learning rate: {suggested:.2e}") for c in at.caption)
    at.button(key="lr-use").click().run()
    assert not at.exception, at.exception
    assert at.number_input(key="retrain-lr").value == pytest.approx(suggested)
