"""Shell completion: Typer's options, and task names and job ids from the config and the record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TASK_MODULE, subprocess_env
from typer.testing import CliRunner

from taskctl.cli import app

TASKCTL = str(Path(sys.executable).with_name("taskctl"))  # the installed entry point
SIDE_EFFECT = "\n\nfrom pathlib import Path as _Path\n_Path(__file__).with_name('imported').write_text('yes')\n"


def complete(project, line: str, shell: str = "bash") -> list[str]:
    "What the `taskctl` command answers a shell asking to complete `line` (the real entry point)."
    env = subprocess_env() | {"_TASKCTL_COMPLETE": f"complete_{shell}"}
    words = line.split(" ")
    if shell == "bash":
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": line}
    # The shell passes the line in the environment, to the installed command.
    done = subprocess.run([TASKCTL], capture_output=True, text=True, env=env, cwd=project.root, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def test_task_names_and_job_ids_complete_without_importing_task_modules(project):
    job = project.enqueue("add", "1")
    (project.root / f"{project.module}.py").write_text(TASK_MODULE + SIDE_EFFECT)
    config = f"taskctl --config {project.config}"
    names = complete(project, f"{config} enqueue ")
    assert f"{project.module}.add" in names and f"{project.module}.yearly" in names
    assert "taskctl.retention.prune" in names
    assert complete(project, f"{config} enqueue fla") == ["flaky"]  # a unique suffix, which enqueue takes
    assert complete(project, f"{config} history --task {project.module}.bo") == [f"{project.module}.boom"]
    assert complete(project, f"{config} show {job[:4]}") == [job]
    assert complete(project, f"{config} cancel {job[:6]}") == [job]
    assert complete(project, f"{config} show ffffffff") == []
    zsh = complete(project, f"{config} results {project.module}.ec", shell="zsh")
    assert zsh == [f"_arguments '*: :((\"{project.module}.echo\"))'"]
    assert not (project.root / "imported").exists()


def test_completion_through_typer_and_without_a_config(project):
    "The CLI itself (Typer's completion, which calls the same functions) answers the same."
    job = project.enqueue("echo", "x")
    env = {"_TASKCTL_COMPLETE": "complete_bash"}
    for line, expected in (
        (f"taskctl --config {project.config} retry {job[:5]}", [job]),
        (f"taskctl --config {project.config} enqueue {project.module}.sam", [f"{project.module}.sample"]),
        ("taskctl --config /no/such/config.toml enqueue ", []),
    ):
        words = line.split(" ")
        comp = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
        result = CliRunner().invoke(app, [], env=env | comp, prog_name="taskctl")
        assert result.exit_code == 0 and result.stdout.split() == expected, (line, result.stdout, result.stderr)
    assert complete(project, "taskctl --config /no/such/config.toml show ab") == []
    assert "run-consumer" in complete(project, "taskctl ru")  # command names: Typer's completion


def test_show_and_install_completion(project, tmp_path):
    env = subprocess_env() | {"HOME": str(tmp_path), "SHELL": "/bin/bash"}

    def in_bash(option: str) -> subprocess.CompletedProcess[str]:
        # Typer finds the shell among the command's ancestors: one is made sure of here
        # (a test run started in the background by a shell that has exited has none).
        return subprocess.run(
            ["bash", "-c", f'"$0" {option}; exit $?', TASKCTL], capture_output=True, text=True, env=env, timeout=60
        )

    shown = in_bash("--show-completion")
    assert shown.returncode == 0 and "_TASKCTL_COMPLETE=complete_bash" in shown.stdout, shown.stderr
    installed = in_bash("--install-completion")
    assert installed.returncode == 0, installed.stderr
    assert "completion installed" in installed.stdout.lower() and (tmp_path / ".bashrc").exists()


def test_tasks_with_history_lists_each_finished_task_once(project):
    from taskctl.config import load_settings
    from taskctl.engines import open_record

    for task in ("add", "add", "echo", "boom", "boom"):
        project.enqueue(task, "1")
    project.burst()
    project.enqueue("sample")  # queued, not finished: not in history
    record = open_record(load_settings(project.config))
    assert sorted(record.tasks_with_history()) == [f"{project.module}.{t}" for t in ("add", "boom", "echo")]
