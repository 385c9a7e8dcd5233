"""Annotation quality and data curation: agreement, consensus, flags, augmentation, splits."""

from curation.aggregation import (
    DawidSkene,
    MajorityVote,
    consensus_frame,
    make_aggregator,
)
from curation.agreement import (
    agreement_coefficients,
    annotator_agreement,
    bootstrap_ci,
    cohen_kappa_pairwise,
    count_table,
    fleiss_kappa,
    gwet_ac1,
    item_agreement,
    krippendorff_alpha,
    per_class_agreement,
    percent_agreement,
)
from curation.curate import changes, curate
from curation.embeddings import Embedder, embed_items, embed_texts
from curation.export import ExportResult, export_dataset
from curation.flags import FlagReport, flag_items, register_flagger, review_queue
from curation.guidelines import Guideline, load_guideline
from curation.io import AnnotationFileError, load_annotations, validate_long_frame
from curation.report import AgreementReport, agreement_report, choose_coefficient
from curation.splits import near_duplicate_groups, stratified_group_split
from curation.store import ImportResult, Project, text_sha1
from curation.workspace import (
    export_curated,
    export_project,
    flag_project,
    import_file,
    load_queue,
    open_demo_project,
    open_project,
)

__all__ = [
    "agreement_coefficients",
    "agreement_report",
    "AgreementReport",
    "AnnotationFileError",
    "annotator_agreement",
    "bootstrap_ci",
    "changes",
    "choose_coefficient",
    "cohen_kappa_pairwise",
    "consensus_frame",
    "count_table",
    "curate",
    "DawidSkene",
    "embed_items",
    "embed_texts",
    "Embedder",
    "export_curated",
    "export_dataset",
    "export_project",
    "ExportResult",
    "flag_items",
    "flag_project",
    "FlagReport",
    "fleiss_kappa",
    "Guideline",
    "gwet_ac1",
    "import_file",
    "ImportResult",
    "item_agreement",
    "krippendorff_alpha",
    "load_annotations",
    "load_guideline",
    "load_queue",
    "MajorityVote",
    "make_aggregator",
    "near_duplicate_groups",
    "open_demo_project",
    "open_project",
    "per_class_agreement",
    "percent_agreement",
    "Project",
    "register_flagger",
    "review_queue",
    "stratified_group_split",
    "text_sha1",
    "validate_long_frame",
]

__version__ = "0.1.0"
