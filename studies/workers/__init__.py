"""Compute on jobs a worker has claimed: generate, score, train, build reports.

Each module takes rows already claimed through :mod:`studies.lifecycle` and
writes results only through its claim-guarded functions. torch and the heavy
parts of stylecore are imported lazily here, so a web process that never runs
a job does not load models.
"""
