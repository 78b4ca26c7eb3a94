"""Commands that answer at once: what each one imports, asked of a real `taskctl`
process (no timing here: bench/cli.py measures it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlite_utils import Database

from taskctl import health, service
from taskctl.cli import ops
from taskctl.cli import service as service_cli
from taskctl.engines.sqlite_file import STEPS
from taskctl.engines.sqlite_schema import migrations
from tests.conftest import Project, subprocess_env

# What a listing command has no use for: Huey (and through huey.storage, redis), the
# task modules (and requests), sqlite-utils, and rich's syntax highlighting (pygments).
HEAVY = ("huey", "requests", "sqlite_utils", "pygments", "redis")

PROBE = """
import json, sys
from taskctl.launch import main
sys.argv = ["taskctl", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def loaded(*args: str, cwd: object = None, code: int = 0) -> set[str]:
    "The modules a real `taskctl ARGS` process imported, to its end; it must exit with `code`."
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=subprocess_env(), cwd=cwd, timeout=60
    )
    *printed, last = done.stderr.strip().splitlines()
    found = json.loads(last)
    assert found["code"] == code and "Traceback" not in done.stderr, (args, done.stdout, printed)
    return set(found["modules"])


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


# A process without the redis package, as after `pip install taskctl` without the extra:
# None in sys.modules is how Python marks a module as not importable.
WITHOUT_REDIS = """
import sys
sys.modules["redis"] = None
from taskctl.launch import main
sys.argv = ["taskctl", *sys.argv[1:]]
main()
"""


def without_redis(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_REDIS, "--config", str(project.config), *args],
        capture_output=True, text=True, env=subprocess_env(), cwd=project.root, timeout=60,
    )  # fmt: skip


@pytest.mark.sqlite
def test_the_sqlite_engine_needs_no_redis_and_a_redis_url_names_the_extra(project: Project) -> None:
    queued = without_redis(project, "enqueue", "add", "2", "3")
    assert queued.returncode == 0, queued.stderr
    ran = without_redis(project, "run-consumer", "--burst")
    assert ran.returncode == 0, ran.stderr
    assert project.job(queued.stdout.strip())["state"] == "succeeded"

    project.config.write_text(
        project.config.read_text().replace(project.database_line, 'database = "redis://h:6379/0"')
    )
    for args in (["status"], ["enqueue", "add", "1"], ["run-consumer", "--burst"]):
        done = without_redis(project, *args)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"Error: {project.config}: [taskctl] database 'redis://h:6379/0' is Redis, and the redis package "
            "is not installed: pip install 'taskctl[redis]'"
        ]


@pytest.mark.sqlite
def test_sqlite_utils_loads_only_to_change_the_schema(project: Project) -> None:
    assert "sqlite_utils" in loaded("--config", str(project.config), "enqueue", "add", "1", cwd=project.root)
    # The database is made now, its schema whole: neither an enqueue nor a consumer needs it.
    for command in (["enqueue", "add", "2"], ["run-consumer", "--burst"]):
        modules = loaded("--config", str(project.config), *command, cwd=project.root)
        assert "huey" in modules and "sqlite_utils" not in modules, command
    assert project.status()["counts"]["succeeded"] == 2


def test_the_version_a_consumer_records_is_the_installed_one():
    # Read from taskctl.__version__, which the build takes as the package's version.
    import importlib.metadata

    from taskctl import presence

    assert presence.taskctl_version() == importlib.metadata.version("taskctl") != ""
