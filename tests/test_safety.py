"""Uploads and models never run code: pickled weights are refused with the fix; uploads have a limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.io import AnnotationFileError, load_annotations


@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory, tiny_model) -> str:
    """The tiny BERT saved again as pytorch_model.bin only (a pickle)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("pickled")
    for path in Path(tiny_model).iterdir():
        if path.suffix != ".safetensors":
            shutil.copy(path, folder / path.name)
    torch.save(load_file(Path(tiny_model) / "model.safetensors"), folder / "pytorch_model.bin")
    assert (folder / "pytorch_model.bin").is_file() and not list(folder.glob("*.safetensors"))
    return str(folder)


def test_fine_tune_refuses_pickled_weights_and_says_how_to_convert(pickled_model, tiny_model):
    from fine_tune._model import load_model
    from fine_tune.config import TrainConfig

    with pytest.raises(ValueError) as caught:
        load_model(TrainConfig(model=pickled_model), 2)
    message = str(caught.value)
    assert "pytorch_model.bin" in message and "never loaded" in message
    assert "safe_serialization=True" in message
    assert load_model(TrainConfig(model=tiny_model), 2) is not None  # the safetensors copy loads


def test_augmenter_refuses_pickled_weights(pickled_model):
    from curation.augment import AugmenterError
    from curation.augment._models import _build

    with pytest.raises(AugmenterError, match="pytorch_model.bin.*never loaded"):
        _build(pickled_model, "cpu", "fill-mask")


@pytest.mark.parametrize("name", ["rows.pkl", "rows.pickle", "rows.npy", "rows.joblib"])
def test_code_executing_formats_are_not_read(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really")
    with pytest.raises(AnnotationFileError, match="cannot tell the file type"):
        load_annotations(path)


def test_upload_limit_on_the_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.setenv("CURATION_URL", str(tmp_path / "p.sqlite"))
    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "0.001")  # about 1 KiB
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=60)
    at.run()
    body = b"item_id,text,annotator_id,label\n" + b"".join(
        f"{i},some text {i},ann,pos\n".encode() for i in range(100))
    at.file_uploader[0].set_value(("big.csv", body, "text/csv")).run()
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    message = at.error[0].value
    assert "Nothing was imported. big.csv: is 2.4 KiB, over the 1.0 KiB limit" in message
    assert {m.label: m.value for m in at.metric}["Annotations"] == "0"


def test_bad_upload_limit_setting_is_named(monkeypatch):
    from curation.workspace import upload_limit_bytes

    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="CURATION_MAX_UPLOAD_MB='lots'"):
        upload_limit_bytes()
    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "50")
    assert upload_limit_bytes() == 50 * 2**20
