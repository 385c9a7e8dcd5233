"""Which language a project's texts are in (issue 18), and the warning when the bundled English
model does not cover it; checked not to cry wolf on the real English data sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation.languages import latin_language, model_warning, project_language

FRENCH = ["Ma carte a été volée et je ne peux plus payer avec elle.",
          "La banque a bloqué le compte mais je n'ai rien reçu pour le moment."] * 4
GERMAN = ["Meine Karte wurde gestohlen und ich kann nicht mehr zahlen.",
          "Die Bank hat das Konto gesperrt, aber ich habe nichts bekommen."] * 4
SPANISH = ["Me robaron la tarjeta y no puedo pagar con ella en la tienda.",
           "El banco bloqueó la cuenta pero no he recibido nada todavía."] * 4


@pytest.mark.parametrize("texts, language", [(FRENCH, "French"), (GERMAN, "German"),
                                             (SPANISH, "Spanish")])
def test_latin_script_languages_are_told_apart_and_warned_about(texts, language):
    assert latin_language(texts) == language
    warning = model_warning(texts, None)
    assert warning.startswith(f"The texts read as {language}") and "--model" in warning
    assert model_warning(texts, "paraphrase-multilingual-MiniLM-L12-v2") is None  # chosen


def test_too_few_words_say_nothing():
    assert latin_language(["Karte gestohlen"]) is None
    assert project_language(["1234", "!!"]) == {"script": None, "share": 0.0, "language": None}


def test_the_real_english_data_sets_never_warn_even_in_small_samples(amazon, dynasent):
    """Two data sets nobody tuned the word lists to; 10-text samples are a small project."""
    rng = np.random.default_rng(0)
    for frame in (amazon, dynasent):
        texts = frame.drop_duplicates("item_id")["text"].tolist()
        assert project_language(texts)["language"] == "English"
        warned = sum(model_warning(list(rng.choice(texts, 10)), None) is not None
                     for _ in range(200))
        assert warned == 0


def test_the_project_page_names_the_language_and_the_kind_of_items(tmp_path, monkeypatch):
    from test_pairs import app_on

    rows = [(f"f{i}", text, a, "plainte") for i, text in enumerate(FRENCH) for a in ("x", "y")]
    at = app_on(tmp_path, monkeypatch, pd.DataFrame(rows, columns=["item_id", "text",
                                                                   "annotator_id", "label"]))
    lines = [t.value for t in at.text]
    assert any(v.startswith("Texts: French, Latin script") and "single texts" in v for v in lines)
    assert any("read as French" in w.value for w in at.warning)
