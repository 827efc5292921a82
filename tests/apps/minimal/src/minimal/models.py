from django.db import models


class Job(models.Model):
    numbers = models.JSONField()
    total = models.IntegerField(null=True)
    worker_pid = models.IntegerField(null=True)
    done = models.BooleanField(default=False)
