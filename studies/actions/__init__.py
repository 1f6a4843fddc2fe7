"""The ``do_*`` / ``check_*`` actions a researcher's UI calls, in one namespace.

Study and job actions live in :mod:`studies.lifecycle`; going live and
duplicating in :mod:`studies.actions.golive`; participant actions in
:mod:`studies.actions.participants`.
"""

from ..lifecycle.candidates import (
    do_cancel,
    do_cancel_candidates,
    do_queue_generation,
    do_queue_scoring,
    do_requeue_candidates,
    do_retry_failed,
)
from ..lifecycle.reports import do_request_report
from ..lifecycle.study import (
    ImportReport,
    do_close,
    do_create_study,
    do_import_images,
    do_update_study_status,
)
from ..lifecycle.training import do_request_cancel, do_start_training_run
from .design import design_document, do_import_design
from .golive import (
    check_can_go_live,
    compute_config_hash,
    do_duplicate_study,
    do_go_live,
)
from .live_edits import do_save_live_edit

__all__ = [
    "ImportReport",
    "check_can_go_live",
    "compute_config_hash",
    "do_cancel",
    "do_cancel_candidates",
    "do_close",
    "do_create_study",
    "design_document",
    "do_duplicate_study",
    "do_import_design",
    "do_go_live",
    "do_import_images",
    "do_queue_generation",
    "do_queue_scoring",
    "do_request_cancel",
    "do_request_report",
    "do_requeue_candidates",
    "do_retry_failed",
    "do_save_live_edit",
    "do_start_training_run",
    "do_update_study_status",
]
