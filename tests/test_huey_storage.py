"""Huey's own storage test-suite, run against taskctl's JobStorage."""

import os

os.environ.setdefault("HUEY_SLOW_TESTS", "1")  # includes the consumer integration test

import pytest
from huey.tests.base import BaseTestCase
from huey.tests.test_storage import StorageTests

from taskctl.app import TaskctlHuey


class TestJobStorage(StorageTests, BaseTestCase):
    supports_ttl = False

    @pytest.fixture(autouse=True)
    def _in_tmp(self, tmp_path):
        self.db_path = str(tmp_path / "huey-suite.db")

    def get_huey(self):
        return TaskctlHuey("huey-suite", filename=self.db_path, timeout=3)
