"""Commands that answer at once: what each one imports, asked of a real `taskctl`
process (no timing here: bench/cli.py measures it)."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlite_utils import Database

from taskctl import health, service
from taskctl.cli import ops
from taskctl.cli import service as service_cli
from taskctl.engines.sqlite_file import STEPS
from taskctl.engines.sqlite_schema import migrations
from tests.conftest import subprocess_env

# What a listing command has no use for: Huey (and through huey.storage, redis), the
# task modules (and requests), sqlite-utils, and rich's syntax highlighting (pygments).
HEAVY = ("huey", "requests", "sqlite_utils", "pygments", "redis")

PROBE = """
import json, sys
from taskctl.launch import main
sys.argv = ["taskctl", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def loaded(*args: str, cwd: object = None) -> set[str]:
    "The modules a real `taskctl ARGS` process imported, to its end."
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=subprocess_env(), cwd=cwd, timeout=60
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


def test_help_imports_neither_huey_nor_the_engines_nor_rich_beyond_typer():
    modules = loaded("--help")
    assert heavy(modules, (*HEAVY, "pydantic")) == []
    assert not {"taskctl.engines", "taskctl.config", "taskctl.render", "taskctl.model"} & modules


def test_defaults_shown_by_help_are_the_domain_s():
    # The CLI repeats them so that --help imports neither module.
    assert (ops.LATE, ops.FAILING_RUNS) == (health.LATE, health.FAILING_RUNS)
    assert service_cli.GRACE == service.GRACE


def test_readers_know_every_schema_step():
    # Readers check a file's schema without sqlite-utils, by these names.
    assert [m.name for m in migrations.pending(Database(memory=True))] == list(STEPS)
