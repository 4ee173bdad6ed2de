"""Periodic maintenance: the job registry, the run ledger, the scheduler and the built-in jobs.

See docs/operations.md. Registering a job is one decorator in a module listed in
:data:`camcount.jobs.registry.JOB_MODULES`.
"""
