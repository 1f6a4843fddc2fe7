"""State changes of studies go through the ``do_*`` functions here.

Each saves the change atomically and queues any follow-up work after commit.
"""

from .design import design_document, do_import_design
from .generation import (
    ImportReport,
    do_cancel,
    do_cancel_candidates,
    do_close,
    do_create_study,
    do_import_images,
    do_queue_generation,
    do_queue_scoring,
    do_request_report,
    do_requeue_candidates,
    do_retry_failed,
    do_update_study_status,
    study_progress,
)
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
    "do_request_report",
    "do_requeue_candidates",
    "do_retry_failed",
    "do_save_live_edit",
    "do_update_study_status",
    "study_progress",
]
