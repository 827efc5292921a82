import os

from celery import shared_task

from .models import Job


@shared_task(name="minimal.add_up")
def add_up(job_id: int) -> int:
    job = Job.objects.get(pk=job_id)
    job.total, job.worker_pid, job.done = sum(job.numbers), os.getpid(), True
    job.save()
    return job.total
