"""Context-aware augmentation that keeps meaning and label.

Augmenters (:data:`AUGMENTERS`, one class each, seeded) propose candidate texts;
:func:`check_candidates` judges each one (meaning, label, novelty, polarity,
protected words) and keeps every reason; :func:`augment` plans how many rows to
add, runs both, and picks the accepted rows with their provenance.

Offline augmenters: ``glossary`` (domain term rules from ``guidelines/``) and
``embedding-neighbours`` (the bundled MiniLM's token-embedding space). With a
Hugging Face model the user has: ``masked-lm`` and ``back-translation``.
"""

from curation.augment import _models, _substitute  # noqa: F401  (registers the augmenters)
from curation.augment._base import (
                                    AUGMENTERS,
                                    Augmenter,
                                    AugmenterError,
                                    Candidate,
                                    Slot,
                                    SubstitutionAugmenter,
                                    register_augmenter,
)
from curation.augment._checks import (
                                    CANDIDATE_COLUMNS,
                                    CheckSettings,
                                    LabelModel,
                                    check_candidates,
)
from curation.augment._models import BackTranslation, MaskedLMSubstitution
from curation.augment._polarity import PolarityGuard
from curation.augment._run import (
                                    AugmentResult,
                                    augment,
                                    augmenter_for,
                                    class_targets,
                                    make_augmenter,
                                    plan_requests,
                                    whole_pairs,
)
from curation.augment._substitute import (
                                    GUIDELINES,
                                    EmbeddingNeighbours,
                                    Glossary,
                                    GlossarySubstitution,
                                    glossary_from_yaml,
                                    load_glossary,
                                    token_vectors,
)
from curation.augment._text import CATEGORIES, Protector, words

__all__ = ["AUGMENTERS", "GUIDELINES", "AugmentResult", "Augmenter", "AugmenterError", "BackTranslation",
           "CANDIDATE_COLUMNS", "CATEGORIES", "Candidate", "CheckSettings", "EmbeddingNeighbours",
           "Glossary", "GlossarySubstitution", "LabelModel", "MaskedLMSubstitution",
           "PolarityGuard", "Protector", "Slot", "SubstitutionAugmenter", "augment", "augmenter_for",
           "check_candidates", "class_targets", "glossary_from_yaml", "load_glossary", "make_augmenter",
           "plan_requests", "register_augmenter", "token_vectors", "whole_pairs", "words"]
