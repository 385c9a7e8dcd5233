"""Annotation quality and data curation: agreement, consensus, flags, augmentation, splits."""

from curation.aggregation import DawidSkene, MajorityVote, consensus_frame, make_aggregator
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
from curation.io import AnnotationFileError, load_annotations, validate_long_frame
from curation.report import AgreementReport, agreement_report, choose_coefficient
from curation.store import ImportResult, Project
from curation.workspace import import_file, open_demo_project, open_project

__all__ = [
    "AgreementReport",
    "AnnotationFileError",
    "DawidSkene",
    "ImportResult",
    "MajorityVote",
    "Project",
    "agreement_coefficients",
    "agreement_report",
    "annotator_agreement",
    "bootstrap_ci",
    "choose_coefficient",
    "cohen_kappa_pairwise",
    "consensus_frame",
    "count_table",
    "fleiss_kappa",
    "gwet_ac1",
    "import_file",
    "item_agreement",
    "krippendorff_alpha",
    "load_annotations",
    "make_aggregator",
    "open_demo_project",
    "open_project",
    "per_class_agreement",
    "percent_agreement",
    "validate_long_frame",
]

__version__ = "0.1.0"
