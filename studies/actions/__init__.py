"""The ``do_*`` / ``check_*`` actions a researcher's UI calls, in one namespace.

Study and job actions live in :mod:`studies.lifecycle`; participant actions in
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
    check_can_go_live,
    compute_config_hash,
    do_close,
    do_create_study,
    do_go_live,
    do_import_images,
    do_update_study_status,
)
from ..lifecycle.training import do_request_cancel, do_start_training_run

__all__ = [
    "ImportReport",
    "check_can_go_live",
    "compute_config_hash",
    "do_cancel",
    "do_cancel_candidates",
    "do_close",
    "do_create_study",
    "do_go_live",
    "do_import_images",
    "do_queue_generation",
    "do_queue_scoring",
    "do_request_cancel",
    "do_request_report",
    "do_requeue_candidates",
    "do_retry_failed",
    "do_start_training_run",
    "do_update_study_status",
]
