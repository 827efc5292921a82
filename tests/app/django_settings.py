"""Django settings for the test suite: production settings with test-only inputs."""

import os

# The app refuses to start without a secret; tests get a throwaway one.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "x" * 50)
os.environ.setdefault("DJANGO_HTTPS_ONLY", "false")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

from doubleboiler.settings import *  # noqa: F403
