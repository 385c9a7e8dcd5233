"""Does the project-language check cry wolf on real English data, and how does it compare with a
language-identification library?

The check (:mod:`curation.languages`) warns when a project's texts are not English and the
embedding model is the bundled English MiniLM. A false warning on English data would send users
to a multilingual model for nothing, so it is measured where nobody tuned the word lists: the
shared Amazon reviews, DynaSent (rounds 1 and 2) and the Financial PhraseBank. A project is
modelled as a random sample of its texts (10, the smallest project worth checking, and 100), drawn
300 times per set and size, seeded.

Peer: lingua (``lingua-language-detector``, a well-kept n-gram language identifier), asked the
same question of the same samples (the language of the sample's texts joined; warn when it is not
English), over the languages our check tells apart. Reported: the share of samples each would warn
about (lower is better: all these texts are English), and the time per sample as a ratio (ours /
lingua), measured in one run on the same samples.

No real non-English data is shared here, so the other side (naming French, German, Spanish texts)
is checked in ``tests/test_languages.py`` on written sentences, not measured.

Run: ``python benchmarks/language_check.py [--draws 300]`` (``pip install .[bench]`` for lingua).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.languages import model_warning  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def english_sets() -> dict[str, list[str]]:
    import pandas as pd

    sets = {}
    amazon = pd.read_csv(DATA / "amazon-crowd-sentiment" / "1k_amazon_reviews_crowdsourced.csv")
    column = next(c for c in amazon.columns if c.lower() in ("text", "review", "review_body",
                                                               "sentence"))
    sets["amazon"] = amazon[column].dropna().astype(str).unique().tolist()
    for name, file in (("dynasent r1", "dynasent-v1.1-round01-yelp-dev.jsonl"),
                       ("dynasent r2", "dynasent-v1.1-round02-dynabench-dev.jsonl")):
        lines = (DATA / "dynasent" / file).read_text(encoding="utf-8").splitlines()
        sets[name] = sorted({json.loads(line)["sentence"] for line in lines})
    text = (DATA / "financial-phrasebank-50agree" / "Sentences_50Agree.txt").read_text(
        encoding="latin-1")
    sets["phrasebank"] = [line.rsplit("@", 1)[0] for line in text.splitlines() if "@" in line]
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=300)
    args = parser.parse_args(argv)
    from lingua import Language, LanguageDetectorBuilder

    languages = [Language.ENGLISH, Language.GERMAN, Language.FRENCH, Language.SPANISH,
                 Language.ITALIAN, Language.PORTUGUESE, Language.DUTCH, Language.SWEDISH,
                 Language.POLISH, Language.TURKISH, Language.INDONESIAN]
    lingua = LanguageDetectorBuilder.from_languages(*languages).build()
    rng = np.random.default_rng(0)
    print(f"{'data set':<14}{'texts':>7}{'sample':>8}{'ours warns':>12}{'lingua warns':>14}"
          f"{'time ours/lingua':>18}")
    totals = {"ours": 0, "lingua": 0, "n": 0}
    for name, texts in english_sets().items():
        for size in (10, 100):
            samples = [list(rng.choice(texts, size)) for _ in range(args.draws)]
            start = time.perf_counter()
            ours = sum(model_warning(s, None) is not None for s in samples)
            t_ours = time.perf_counter() - start
            start = time.perf_counter()
            peer = sum(lingua.detect_language_of(" ".join(s)) != Language.ENGLISH
                       for s in samples)
            t_peer = time.perf_counter() - start
            totals["ours"] += ours
            totals["lingua"] += peer
            totals["n"] += len(samples)
            print(f"{name:<14}{len(texts):>7,}{size:>8}{ours / len(samples):>12.1%}"
                  f"{peer / len(samples):>14.1%}{t_ours / t_peer:>18.2f}")
    print(f"{'all':<14}{'':>7}{'':>8}{totals['ours'] / totals['n']:>12.1%}"
          f"{totals['lingua'] / totals['n']:>14.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
