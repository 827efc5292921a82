"""Scheduler settings: task events only where they can travel; beat on by default."""

from tests.app.test_settings import django

SHOW = (
    "from django.conf import settings as s; "
    "print(s.SCHEDULE_BEAT, s.CELERY_WORKER_SEND_TASK_EVENTS, sorted(s.CELERY_BEAT_SCHEDULE))"
)


def test_task_events_are_refused_on_the_database_broker():
    result = django("check", DEBUG="true", CELERY_TASK_EVENTS="true")
    assert result.returncode != 0
    assert "CELERY_TASK_EVENTS=true needs a broker that can broadcast" in result.stderr


def test_task_events_on_a_redis_broker_and_the_defaults():
    on = django("shell", "-c", SHOW, DEBUG="true", CELERY_TASK_EVENTS="true",
                REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    assert on.returncode == 0, on.stderr
    assert last_line(on).split()[:2] == ["True", "True"]
    default = django("shell", "-c", SHOW, DEBUG="true")
    assert last_line(default) == "True False ['demo', 'prune finished jobs']"
    off = django("shell", "-c", SHOW, DEBUG="true", SCHEDULE_BEAT="false")
    assert last_line(off).split()[0] == "False"


def last_line(result) -> str:
    # Django's shell may first say what it imported.
    return result.stdout.strip().splitlines()[-1]
