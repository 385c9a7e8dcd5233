"""Augmenters backed by Hugging Face models: masked-LM word substitution and back-translation.

:class:`MaskedLMSubstitution` masks one changeable word at a time and lets a
fill-mask model (BERT, RoBERTa, XLM-R, ...) propose whole-word replacements.
:class:`BackTranslation` translates each text into a pivot language and back
with two sequence-to-sequence models (e.g. a Marian en->de and de->en pair).

Models load offline, on first use, and are kept per (model, device) for the
life of the process. A name is a local folder saved with ``save_pretrained``
or a Hugging Face model id already in the local cache; nothing is downloaded
unless ``CURATION_ALLOW_DOWNLOAD=1`` is set. ``torch`` and ``transformers``
are imported on first use, not on import.

Examples
--------
>>> aug = MaskedLMSubstitution("path/to/fill-mask-model", top_k=3)  # nothing is loaded yet
>>> aug.params()["model"], aug.params()["top_k"]
('path/to/fill-mask-model', 3)
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from curation.augment._base import (
    Augmenter,
    AugmenterError,
    Candidate,
    Progress,
    SubstitutionAugmenter,
    register_augmenter,
)
from curation.augment._text import STOPWORDS, Protector, Word
from curation.models import ALLOW_DOWNLOAD_VAR, load_named, pickle_only_hint

if TYPE_CHECKING:
    import torch

__all__ = ["BackTranslation", "MaskedLMSubstitution"]

logger = logging.getLogger(__name__)

#: Word-start markers of byte-level BPE (``Ġ``) and SentencePiece (``▁``) vocabularies.
_MARKERS = ("Ġ", "▁")
#: WordPiece's continuation prefix.
_PIECE = "##"

_MASKED_LM, _SEQ2SEQ = "fill-mask", "sequence-to-sequence"
_AUTO_CLASSES = {_MASKED_LM: "AutoModelForMaskedLM", _SEQ2SEQ: "AutoModelForSeq2SeqLM"}


@dataclass
class _Loaded:
    """A tokenizer and model on one device, the lock held while it runs, and (fill-mask only)
    the whole-word vocabulary: ``words[i]`` is entry ``i`` as a word, ``valid`` flags them."""

    tokenizer: Any
    model: Any
    device: str
    lock: threading.Lock
    max_length: int
    words: list[str] | None = None
    valid: torch.Tensor | None = None


#: (kind, model name, device) -> loaded model.
_MODELS: dict[tuple[str, str, str | None], _Loaded] = {}
_MODELS_LOCK = threading.Lock()


# --------------------------------------------------------------------------- augmenters


@register_augmenter
class MaskedLMSubstitution(SubstitutionAugmenter):
    """Replace a few changeable words with what a fill-mask model predicts in their place.

    Each changeable word (see :class:`~curation.augment._text.Protector`) is
    masked as a whole, with one mask token, and the model's best-scoring
    vocabulary entries at the mask become that word's options. Only whole
    words count: special tokens, WordPiece pieces (``##ing``), BPE or
    SentencePiece entries without the word-start marker, non-alphabetic
    entries, the original word itself, and words the protector would itself
    protect (stopwords, negations, numbers, names) are skipped, so a
    replacement never adds a "not" or a number.

    Parameters
    ----------
    model : str
        A local folder saved with ``save_pretrained`` or a Hugging Face model
        id in the local cache (e.g. ``"bert-base-uncased"``).
    top_k : int
        Options kept per word, best first; one of them is drawn per change.
    max_share : float in (0, 1]
        The largest share of a text's words one candidate may change.
    batch_size : int
        Masked texts per forward pass.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; ``None`` takes CUDA when available.
    seed : int
        Seeds which words change and which option is drawn.
    protector : Protector, optional
        What must not change; by default numbers, names, negations.

    Raises
    ------
    AugmenterError
        On first use, when the model cannot be loaded offline or is not a
        fill-mask model.
    """

    method: ClassVar[str] = "masked-lm"
    description: ClassVar[str] = "Swap a few words for what a masked language model predicts there."

    def __init__(self, model: str, *, top_k: int = 5, max_share: float = 0.15,
                 batch_size: int = 32, device: str | None = None, seed: int = 0,
                 protector: Protector | None = None) -> None:
        super().__init__(top_k=top_k, max_share=max_share, seed=seed, protector=protector)
        self.model = _check_name(model, "model")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.device = _check_device(device)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "model": self.model}

    def options(self, texts: Sequence[str], tokens: Sequence[list[Word]],
                positions: Sequence[list[int]]) -> list[dict[int, list[str]]]:
        """For every text, each changeable position -> up to ``top_k`` whole-word options."""
        loaded = _load(self.model, self.device, _MASKED_LM)
        mask = loaded.tokenizer.mask_token
        jobs = [(i, p, _masked(texts[i], tokens[i][p], mask))
                for i in range(len(texts)) for p in positions[i]]
        out: list[dict[int, list[str]]] = [{} for _ in texts]
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start:start + self.batch_size]
            ranked = self._rank(loaded, [job[2] for job in batch])
            for (i, p, _), entries in zip(batch, ranked):
                picked = self._pick(entries, tokens[i][p].lower)
                if picked:
                    out[i][p] = picked
        return out

    def _rank(self, loaded: _Loaded, batch: list[str]) -> list[list[str]]:
        """The best whole-word vocabulary entries at the mask of each text (``[]`` if the
        mask was truncated away)."""
        import torch

        enc = loaded.tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                               max_length=loaded.max_length).to(loaded.device)
        with loaded.lock, torch.no_grad():
            logits = loaded.model(**enc).logits
        is_mask = enc["input_ids"] == loaded.tokenizer.mask_token_id
        rows = torch.arange(len(batch), device=logits.device)
        scores = logits[rows, is_mask.int().argmax(dim=1)].float()
        scores = scores.masked_fill(~loaded.valid, float("-inf"))
        k = min(int(loaded.valid.sum()), 8 * self.top_k + 32)  # spares for the protector
        best = scores.topk(k, dim=1).indices.tolist()
        found = is_mask.any(dim=1).tolist()
        return [[loaded.words[j] for j in row] if ok else [] for row, ok in zip(best, found)]

    def _pick(self, entries: list[str], original: str) -> list[str]:
        """The first ``top_k`` entries that differ from ``original`` and may be changed."""
        picked: list[str] = []
        seen = {original}
        for word in entries:
            if word.lower() not in seen and self._is_plain(word):
                seen.add(word.lower())
                picked.append(word)
                if len(picked) == self.top_k:
                    break
        return picked

    def _is_plain(self, word: str) -> bool:
        """Whether ``word`` is itself a word the protector lets change (no "not", "five"...)."""
        return [w.text for w in self.protector.changeable(word)] == [word]


@register_augmenter
class BackTranslation(Augmenter):
    """Paraphrase by translating into a pivot language and back.

    Every text is translated ``forward`` with beam search (one output), then
    ``backward`` into up to ``n`` distinct texts. Outputs that are empty or
    equal to the source are dropped. Protected words cannot be steered here;
    the checks reject candidates that lost a number, a name or a negation.

    Parameters
    ----------
    forward, backward : str
        Sequence-to-sequence models (local folders or cached Hugging Face ids),
        e.g. ``"Helsinki-NLP/opus-mt-en-de"`` and ``"Helsinki-NLP/opus-mt-de-en"``.
    num_beams : int
        Beams for the forward pass, and for the backward pass without ``sample``.
    sample : bool
        Sample the backward pass (``temperature``) for more varied outputs;
        otherwise return the ``n`` best beams.
    temperature : float
        Sampling temperature (> 0).
    max_new_tokens : int
        Longest translation, in tokens.
    batch_size : int
        Texts per generation call.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; ``None`` takes CUDA when available.
    seed : int
        Seeds the sampling: the same texts, settings and seed give the same
        candidates.
    protector : Protector, optional
        Stored for provenance; the checks use it.

    Raises
    ------
    AugmenterError
        On first use, when a model cannot be loaded offline or is not a
        sequence-to-sequence model.
    """

    method: ClassVar[str] = "back-translation"
    description: ClassVar[str] = "Translate into a pivot language and back."

    def __init__(self, forward: str, backward: str, *, num_beams: int = 4, sample: bool = True,
                 temperature: float = 0.9, max_new_tokens: int = 256, batch_size: int = 16,
                 device: str | None = None, seed: int = 0,
                 protector: Protector | None = None) -> None:
        super().__init__(seed=seed, protector=protector)
        self.forward = _check_name(forward, "forward")
        self.backward = _check_name(backward, "backward")
        self.num_beams = _positive_int(num_beams, "num_beams")
        self.sample = bool(sample)
        self.temperature = _positive_float(temperature, "temperature")
        self.max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.device = _check_device(device)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "forward": self.forward, "backward": self.backward,
                "num_beams": self.num_beams, "sample": self.sample,
                "temperature": self.temperature}

    def generate(self, ids: Sequence[str], texts: Sequence[str], *, n: Sequence[int] | int = 1,
                 progress: Progress = None) -> list[Candidate]:
        """Up to ``n`` distinct back-translations per text (``n`` may be one count per text)."""
        counts = self._counts(n, len(texts))
        todo = [i for i, k in enumerate(counts) if k > 0 and texts[i].strip()]
        if not todo:
            return []
        forward = _load(self.forward, self.device, _SEQ2SEQ)
        backward = _load(self.backward, self.device, _SEQ2SEQ)
        out: list[Candidate] = []
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            for i, outputs in self._round_trip(forward, backward, chunk, texts, counts):
                out.extend(self._keep(str(ids[i]), texts[i], outputs, counts[i]))
            if progress is not None:
                progress(min(start + self.batch_size, len(todo)) / len(todo), "generating candidates")
        logger.info("back-translation: %d candidates for %d texts", len(out), len(todo))
        return out

    def _round_trip(self, forward: _Loaded, backward: _Loaded, chunk: list[int],
                    texts: Sequence[str], counts: list[int]) -> list[tuple[int, list[str]]]:
        """``(text index, back-translations)`` for the texts whose pivot is not empty."""
        pivots = self._translate(forward, [texts[i] for i in chunk], 1, self._beams(1))
        kept = [(i, p[0].strip()) for i, p in zip(chunk, pivots) if p[0].strip()]
        if not kept:
            return []
        most = max(counts[i] for i, _ in kept)
        backs = self._translate(backward, [p for _, p in kept], most, self._backward(most))
        return [(i, outputs) for (i, _), outputs in zip(kept, backs)]

    def _beams(self, n: int) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": max(self.num_beams, n)}

    def _backward(self, n: int) -> dict[str, Any]:
        if not self.sample:
            return self._beams(n)
        return {"do_sample": True, "num_beams": 1, "temperature": self.temperature}

    def _translate(self, loaded: _Loaded, texts: list[str], n: int,
                   settings: dict[str, Any]) -> list[list[str]]:
        """``n`` translations of each text, seeded."""
        import torch

        enc = loaded.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                               max_length=loaded.max_length).to(loaded.device)
        with loaded.lock, torch.no_grad(), _seeded(self.seed, loaded.device):
            generated = loaded.model.generate(**enc, num_return_sequences=n,
                                              max_new_tokens=self.max_new_tokens, **settings)
        decoded = loaded.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [decoded[j * n:(j + 1) * n] for j in range(len(texts))]

    def _keep(self, source_id: str, text: str, outputs: list[str], n: int) -> list[Candidate]:
        """The first ``n`` distinct, non-empty outputs that differ from the source."""
        seen, out = {text.strip()}, []
        for output in (o.strip() for o in outputs):
            if output and output not in seen and len(out) < n:
                seen.add(output)
                out.append(Candidate(source_id, text, output, self.method))
        return out


# --------------------------------------------------------------------------- loading


def _load(name: str, device: str | None, kind: str) -> _Loaded:
    """The loaded tokenizer and model for ``(kind, name, device)``, loading them on first use."""
    key = (kind, name, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _build(name, device, kind)
            logger.info("loaded %s model %r on %s", kind, name, _MODELS[key].device)
        return _MODELS[key]


def _build(name: str, device: str | None, kind: str) -> _Loaded:
    import torch
    import transformers

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    auto = getattr(transformers, _AUTO_CLASSES[kind])
    tokenizer = _fetch(transformers.AutoTokenizer.from_pretrained, name, kind)
    if kind == _MASKED_LM and tokenizer.mask_token is None:
        raise AugmenterError(
            f"the model {name!r} has no mask token, so it is not a fill-mask model; pass a "
            "masked language model (BERT, RoBERTa, XLM-R, ...) for masked-lm substitution, or "
            "use it with back-translation if it is a translation model.")
    model = _fetch(partial(auto.from_pretrained, use_safetensors=True),  # never unpickle a .bin
                   name, kind).to(device).eval()
    loaded = _Loaded(tokenizer, model, device, threading.Lock(), _max_length(tokenizer, model))
    if kind == _MASKED_LM:
        loaded.words, loaded.valid = _word_table(tokenizer, model, device)
    return loaded


def _fetch(loader: Callable[..., Any], name: str, kind: str) -> Any:
    """``loader(name)`` offline (see :func:`curation.models.load_named`), or an
    :class:`AugmenterError` that says how to provide the model."""
    try:
        return load_named(lambda path, device, **kw: loader(path, **kw), name, None)
    except Exception as err:  # whatever the loader raised, answer with the fix
        raise AugmenterError(_load_message(name, kind, err)) from err


def _load_message(name: str, kind: str, err: Exception) -> str:
    if Path(name).expanduser().is_dir():
        return (f"cannot load the {kind} model from the folder {name!r}: {err}. "
                f"{pickle_only_hint(name)}The folder must "
                "hold a tokenizer and a model saved with `save_pretrained`, and the model must "
                f"be a {kind} model ({_AUTO_CLASSES[kind]}).")
    return (f"the {kind} model {name!r} is not available offline ({err}). Pass the path of a "
            "local folder where the tokenizer and model were saved with `save_pretrained`, or "
            f"set {ALLOW_DOWNLOAD_VAR}=1 on a machine with network access to download this "
            "Hugging Face model id into the local cache.")


def _max_length(tokenizer: Any, model: Any) -> int:
    """Tokens the model can read: the tokenizer's limit, else the model's positions, else 512."""
    limits = [getattr(tokenizer, "model_max_length", None),
              getattr(model.config, "max_position_embeddings", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else 512


def _word_table(tokenizer: Any, model: Any, device: str) -> tuple[list[str], torch.Tensor]:
    """Each vocabulary entry as a whole word (``""`` when it is not one), and a boolean
    tensor over the model's output vocabulary flagging the words."""
    import torch

    size = int(model.get_output_embeddings().weight.shape[0])
    tokens = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
    marker = _word_marker(tokenizer.tokenize("hello world"))
    special = set(tokenizer.all_special_ids)
    # byte-level BPE spells non-ASCII bytes as other characters: let the tokenizer decode them
    decode = (lambda t: tokenizer.convert_tokens_to_string([t]).strip()) if marker == "Ġ" else None
    words = [_whole_word(t, marker, decode) if i not in special and t is not None else ""
             for i, t in enumerate(tokens)]
    words += [""] * (size - len(words))
    valid = torch.tensor([bool(w) for w in words], dtype=torch.bool, device=device)
    if not bool(valid.any()):
        raise AugmenterError("the fill-mask model's vocabulary holds no whole alphabetic words; "
                             "pass a model whose tokenizer has word entries.")
    return words, valid


def _word_marker(sample: Sequence[str]) -> str:
    """``"Ġ"`` (byte-level BPE) or ``"▁"`` (SentencePiece) when the tokens of a sample text
    carry that word-start marker, else ``""`` (WordPiece, word-level).

    >>> _word_marker(["hello", "Ġworld"]), _word_marker(["▁hello", "▁world"])
    ('Ġ', '▁')
    >>> _word_marker(["hello", "world"]), _word_marker(["hel", "##lo", "world"])
    ('', '')
    """
    return next((m for m in _MARKERS if any(t.startswith(m) for t in sample)), "")


def _whole_word(token: str, marker: str, decode: Callable[[str], str] | None = None) -> str:
    """The word a vocabulary entry stands for, or ``""`` for a piece, a mark or a stopword.

    >>> [_whole_word(t, "") for t in ["fees", "##s", "[CLS]", "5", ".", "the", "x"]]
    ['fees', '', '', '', '', '', '']
    >>> [_whole_word(t, "Ġ") for t in ["Ġfees", "fees", "Ġ5"]]
    ['fees', '', '']
    """
    if token.startswith(_PIECE) or (marker and not token.startswith(marker)):
        return ""
    word = decode(token) if decode is not None else token[len(marker):]
    if len(word) < 2 or not word.isalpha() or word.lower() in STOPWORDS:
        return ""
    return word


def _masked(text: str, word: Word, mask: str) -> str:
    """``text`` with ``word`` replaced by one mask token.

    >>> _masked("fees rose", Word("rose", 5, 9, False), "[MASK]")
    'fees [MASK]'
    """
    return text[:word.start] + mask + text[word.end:]


@contextlib.contextmanager
def _seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch for what runs inside, restoring the global random state after."""
    import torch

    cuda = torch.device(device).type == "cuda"
    devices = [torch.device(device).index or torch.cuda.current_device()] if cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- checks


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"{what} must be a model folder or a Hugging Face model id; got "
                         f"{value!r}.")
    return str(value)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer; got {value!r}.")
    return int(value)


def _positive_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ValueError(f"{what} must be a positive number; got {value!r}.")
    return float(value)


def _check_device(device: Any) -> str | None:
    if device is not None and not isinstance(device, str):
        raise ValueError(f"device must be None or a string such as 'cpu' or 'cuda'; got "
                         f"{device!r}.")
    return device
