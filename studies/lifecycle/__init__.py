"""Every state change of a study and of its background jobs (candidates, training runs, reports).

``do_*`` functions run on the web side (admin actions, the demo command); the
claim-guarded functions are what workers call. This package imports models,
never :mod:`studies.tasks`: tasks are queued by name after commit.
"""
