"""`manage.py prune_jobs`: what `jobs.prune` does, from a shell or a one-off dyno."""

import json

from django.core.management.base import BaseCommand

from jobs.retention import prune


class Command(BaseCommand):
    help = "Delete finished jobs and delivered broker messages past their bounds; print the counts."

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(prune(), sort_keys=True))
