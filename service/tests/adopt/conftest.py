"""The adoption tests (issue 19): upstream Glance from its own virtualenv; MariaDB."""

from tests.fixtures.mariadb import mariadb  # noqa: F401  (session fixture)
