"""Model-backed augmenters on tiny models built here from configs: the plumbing, not the quality."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from curation.augment._base import AUGMENTERS, AugmenterError, Candidate  # noqa: E402
from curation.augment._models import BackTranslation, MaskedLMSubstitution  # noqa: E402
from curation.augment._text import Protector, words  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PLAIN = """the a report says said anna did not pay paid fees costs for blue red green car bus
train yesterday today good bad great movie film price sales profit market company bank money
quickly slowly happy sad house dog cat and was is it very five ten""".split()
PIECES = ["##s", "##ing", "##ed", "##ly"]
MARKS = [".", ",", "!", "?", "5", "3"]

TEXT = "The report says Anna did not pay 5 fees for the blue car yesterday."
TEXTS = [TEXT, "The company paid good money for the red house today.",
         "Sales were slow.", "A bad film, quickly forgotten by the market."]
IDS = ["a", "b", "c", "d"]

SEQ_SPECIALS = ["<pad>", "</s>", "<s>", "<unk>"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny random BERT masked LM with a WordPiece vocabulary, saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + PLAIN + PIECES + MARKS) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(folder))  # reads vocab.txt
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _seq2seq(folder: Path, seed: int) -> Path:
    """A tiny random BART with a word-level tokenizer, saved with save_pretrained."""
    vocab = {tok: i for i, tok in enumerate(SEQ_SPECIALS + PLAIN + MARKS)}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = tokenizers.normalizers.Lowercase()
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    backend.post_processor = tokenizers.processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
        unk_token="<unk>")
    config = transformers.BartConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
        bos_token_id=2, decoder_start_token_id=1, forced_bos_token_id=None,
        forced_eos_token_id=None)
    torch.manual_seed(seed)
    model = transformers.BartForConditionalGeneration(config)
    with torch.no_grad():  # random weights: keep the specials (an early </s>) out of the output
        model.final_logits_bias[0, :len(SEQ_SPECIALS)] = -20.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bart_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return (_seq2seq(tmp_path_factory.mktemp("tiny-fwd"), 1),
            _seq2seq(tmp_path_factory.mktemp("tiny-bwd"), 2))


@pytest.fixture(scope="module", params=["Ġ", "▁"], ids=["byte-level-bpe", "sentencepiece"])
def marked_dir(request, tmp_path_factory) -> Path:
    """A tiny masked LM whose BPE vocabulary marks word starts (RoBERTa's Ġ, XLM-R's ▁)."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    if request.param == "Ġ":
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        backend.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + 120, special_tokens=specials,
                                  initial_alphabet=alphabet, show_progress=False)
    backend.train_from_iterator(TEXTS * 3 + [" ".join(PLAIN), "café naïve"], trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
        unk_token="<unk>", mask_token="<mask>")
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=64,
                                     pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-marked")
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not stall when other jobs load the CPUs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.delenv("CURATION_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _masked_lm(bert_dir: Path, **kwargs) -> MaskedLMSubstitution:
    return MaskedLMSubstitution(str(bert_dir), device="cpu", **kwargs)


def _back(bart_dirs: tuple[Path, Path], **kwargs) -> BackTranslation:
    kwargs = {"max_new_tokens": 8, "device": "cpu", **kwargs}
    return BackTranslation(str(bart_dirs[0]), str(bart_dirs[1]), **kwargs)


# --------------------------------------------------------------------------- masked LM


def test_both_augmenters_are_registered():
    assert AUGMENTERS["masked-lm"] is MaskedLMSubstitution
    assert AUGMENTERS["back-translation"] is BackTranslation


def test_masked_lm_proposes_whole_vocabulary_words(bert_dir):
    out = _masked_lm(bert_dir, top_k=5, max_share=0.3).generate(IDS, TEXTS, n=4)
    assert out and all(isinstance(c, Candidate) and c.method == "masked-lm" for c in out)
    assert {c.source_id for c in out} <= set(IDS)
    plain = {w for w in PLAIN if len(w) > 1}
    for cand in out:
        assert cand.text != cand.source_text and cand.changes
        for old, new in cand.changes:
            assert new.lower() in plain and new.lower() != old.lower()
            # never a stopword, negation or number word: the replacement may itself change
            assert [w.text for w in Protector().changeable(new)] == [new]


def test_options_are_at_most_top_k_and_best_first(bert_dir):
    aug = _masked_lm(bert_dir, top_k=3)
    tokens = words(TEXT)
    changeable = {w.start for w in Protector().changeable(TEXT)}
    positions = [k for k, w in enumerate(tokens) if w.start in changeable]
    (opts,) = aug.options([TEXT], [tokens], [positions])
    assert set(opts) == set(positions)  # "report", "says", "pay", "fees", ...
    assert all(1 <= len(o) <= 3 and tokens[p].lower not in o for p, o in opts.items())


def test_masked_lm_keeps_protected_words_and_max_share(bert_dir):
    aug = _masked_lm(bert_dir, top_k=5, max_share=0.25)
    out = aug.generate(["a"], [TEXT], n=8)
    source = [w.text for w in words(TEXT)]
    changeable = {w.start for w in Protector().changeable(TEXT)}
    n_alpha = sum(w.is_alpha for w in words(TEXT))
    assert len(out) >= 2
    for cand in out:
        new = words(cand.text)
        assert len(new) == len(source)
        changed = [k for k, (a, b) in enumerate(zip(source, (w.text for w in new))) if a != b]
        assert 1 <= len(changed) <= max(1, int(np.floor(0.25 * n_alpha)))
        assert all(words(TEXT)[k].start in changeable for k in changed)
        assert {"Anna", "not", "5"} <= {w.text for w in new}
        assert Protector().lost(TEXT, cand.text) == []


def test_masked_lm_repeats_with_a_seed(bert_dir):
    def run(seed):
        return _masked_lm(bert_dir, seed=seed, max_share=0.3).generate(IDS, TEXTS, n=3)

    assert run(0) == run(0)
    assert any(run(seed) != run(0) for seed in (1, 2, 3))


def test_masked_lm_n_per_text_and_progress(bert_dir):
    seen: list[float] = []
    out = _masked_lm(bert_dir).generate(IDS, TEXTS, n=[0, 2, 1, 0],
                                        progress=lambda f, m: seen.append(f))
    per_id = {i: sum(c.source_id == i for c in out) for i in IDS}
    assert per_id["a"] == 0 and per_id["d"] == 0 and per_id["b"] <= 2 and per_id["c"] <= 1
    assert seen and seen[-1] == 1.0


def test_masked_lm_params_name_the_model(bert_dir):
    params = _masked_lm(bert_dir, top_k=4).params()
    assert params["model"] == str(bert_dir) and params["top_k"] == 4 and params["seed"] == 0


def test_marked_vocabularies_give_word_start_entries_only(marked_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(marked_dir)
    marker = "Ġ" if any(t.startswith("Ġ") for t in tokenizer.get_vocab()) else "▁"
    starts = {tokenizer.convert_tokens_to_string([t]).strip()
              for t in tokenizer.get_vocab() if t.startswith(marker)}
    out = _masked_lm(marked_dir, top_k=5, max_share=0.3).generate(IDS, TEXTS, n=3)
    assert out
    for _old, new in (change for cand in out for change in cand.changes):
        assert new.lower() in {w.lower() for w in starts} and new.isalpha()
        assert marker not in new


def test_not_a_fill_mask_model(bart_dirs):
    with pytest.raises(AugmenterError, match=f"(?s)'{bart_dirs[0]}'.*no mask token"):
        MaskedLMSubstitution(str(bart_dirs[0]), device="cpu").generate(["a"], [TEXT])


# --------------------------------------------------------------------------- back-translation


def test_back_translation_candidates(bart_dirs):
    out = _back(bart_dirs).generate(IDS, TEXTS, n=3)
    assert out and all(isinstance(c, Candidate) for c in out)
    for cand in out:
        assert cand.method == "back-translation" and cand.changes == ()
        assert cand.text.strip() and cand.text.strip() != cand.source_text.strip()
        assert cand.source_text == TEXTS[IDS.index(cand.source_id)]
    for i in IDS:
        mine = [c.text for c in out if c.source_id == i]
        assert len(mine) <= 3 and len(set(mine)) == len(mine)


def test_back_translation_counts_progress_and_beams(bart_dirs):
    seen: list[float] = []
    aug = _back(bart_dirs, batch_size=2)
    out = aug.generate(IDS, TEXTS, n=[2, 0, 1, 2], progress=lambda f, m: seen.append(f))
    per_id = {i: sum(c.source_id == i for c in out) for i in IDS}
    assert per_id["a"] <= 2 and per_id["b"] == 0 and per_id["c"] <= 1 and per_id["d"] <= 2
    assert seen == [2 / 3, 1.0]  # three texts asked for, in batches of two
    beams = _back(bart_dirs, sample=False, num_beams=2).generate(IDS, TEXTS, n=3)
    assert all(sum(c.source_id == i for c in beams) <= 3 for i in IDS)


def test_back_translation_repeats_with_a_seed(bart_dirs):
    first = _back(bart_dirs, seed=7).generate(IDS, TEXTS, n=2)
    assert first == _back(bart_dirs, seed=7).generate(IDS, TEXTS, n=2)
    state = torch.random.get_rng_state()
    _back(bart_dirs, seed=8).generate(IDS, TEXTS, n=2)
    assert torch.equal(state, torch.random.get_rng_state())  # the global seed is left alone


def test_back_translation_params_name_both_models(bart_dirs):
    params = _back(bart_dirs, sample=False, temperature=0.5).params()
    assert params["forward"] == str(bart_dirs[0]) and params["backward"] == str(bart_dirs[1])
    assert (params["num_beams"], params["sample"], params["temperature"]) == (4, False, 0.5)


def test_back_translation_needs_seq2seq_models(bert_dir, bart_dirs):
    aug = BackTranslation(str(bart_dirs[0]), str(bert_dir), device="cpu")
    with pytest.raises(AugmenterError, match=f"(?s)folder '{bert_dir}'.*sequence-to-sequence"):
        aug.generate(["a"], [TEXT])


# --------------------------------------------------------------------------- offline loading


def test_missing_folder_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(AugmenterError, match=f"(?s)'{missing}'.*not available offline"
                                             r".*save_pretrained.*CURATION_ALLOW_DOWNLOAD=1"):
        MaskedLMSubstitution(str(missing)).generate(["a"], [TEXT])
    with pytest.raises(AugmenterError, match="CURATION_ALLOW_DOWNLOAD"):
        BackTranslation(str(missing), str(missing)).generate(["a"], [TEXT])


def test_hub_id_not_in_the_cache_fails_at_once():
    start = time.perf_counter()
    with pytest.raises(AugmenterError, match="(?s)'someone/not-a-cached-model'.*offline"):
        MaskedLMSubstitution("someone/not-a-cached-model").generate(["a"], [TEXT])
    assert time.perf_counter() - start < 30


def test_bad_settings_are_rejected_at_once():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        MaskedLMSubstitution("m", batch_size=0)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        BackTranslation("f", "b", temperature=0)
    with pytest.raises(ValueError, match="model must be a model folder"):
        MaskedLMSubstitution("")
