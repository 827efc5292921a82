"""One process of the concurrent-admission test (tests/app/test_limits.py).

Spawned fresh, so it sets up Django itself for the database it is given.
"""

import os


def admit_after_barrier(env: dict, barrier, client: str, count: int, results) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from jobs import admission

    real_check = admission.check

    def check_then_wait(*args, **kwargs):
        refusal = real_check(*args, **kwargs)
        if not connection.in_atomic_block:
            barrier.wait(timeout=30)  # every process passed the check without the lock
        return refusal

    admission.check = check_then_wait
    outcome = admission.admit(client, count, {"io_wait_ms": 0}, os.getpid())
    results.put("refused" if isinstance(outcome, admission.Refusal) else "admitted")
