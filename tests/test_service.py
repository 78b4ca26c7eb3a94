"""`taskctl service`: the unit and the plist it writes, installed into a temporary home.

These tests never reach the machine's service manager: PATH holds no systemctl
or launchctl, and the home is a temporary folder."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskctl.cli import app

pytestmark = pytest.mark.sqlite  # the service is the same whatever the engine


def _service(project, home: Path, *args: str, **env: str):
    "The real CLI, in `home`, with a PATH where no service manager can be found."
    empty = home.parent / "empty-path"
    empty.mkdir(exist_ok=True)
    environ = {"HOME": str(home), "PATH": str(empty), "USER": "someone", **env}
    return CliRunner().invoke(app, ["--config", str(project.config), "service", *args], env=environ)


def _files(home: Path) -> list[Path]:
    return sorted(p.relative_to(home) for p in home.rglob("*") if p.is_file())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def test_the_systemd_unit_passes_systemd_analyze_verify(project, home):
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed here")
    done = _service(project, home, "install", "--platform", "systemd", "--grace", "45s")
    assert done.exit_code == 1
    assert "could not enable it: systemctl is not on PATH" in done.stderr
    [unit] = (home / ".config" / "systemd" / "user").glob("*.service")
    checked = subprocess.run([verify, "verify", str(unit)], capture_output=True, text=True)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    text = unit.read_text()
    assert "KillMode=mixed" in text and "Restart=on-failure" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M)[1]) > 45
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.M)[1].split()
    assert Path(exec_start[0]).is_absolute() and os.access(exec_start[0], os.X_OK)
    assert exec_start[1:] == ["--config", str(project.config), "run-consumer", "--grace", "45s"]
    assert f"EnvironmentFile=-{home}/.config/taskctl/" in text


def test_the_launchd_plist_loads_with_plistlib(project, home):
    done = _service(project, home, "install", "--platform", "launchd", "--grace", "45s")
    assert done.exit_code == 1 and "could not enable it" in done.stderr
    [path] = (home / "Library" / "LaunchAgents").glob("*.plist")
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == path.stem
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ExitTimeOut"] > 45  # launchd's default, 20 s, would kill it mid-grace
    shell, env_file, command = (
        plist["ProgramArguments"][:4],
        plist["ProgramArguments"][4],
        plist["ProgramArguments"][5:],
    )
    assert shell[:2] == ["/bin/sh", "-c"] and Path(env_file).is_file() and env_file.endswith(".env")
    assert Path(command[0]).is_absolute()
    assert command[-5:] == ["--config", str(project.config), "run-consumer", "--grace", "45s"]
    assert plist["StandardOutPath"] == plist["StandardErrorPath"]
    assert Path(plist["StandardOutPath"]).parent == home / "Library" / "Logs" / "taskctl"
    assert plist["WorkingDirectory"] == str(project.root)


@pytest.mark.parametrize("platform", ["systemd", "launchd"])
def test_install_then_uninstall_leave_nothing_behind(project, home, platform):
    project.write_config(
        extra='[github]\ntoken_env = "TASKCTL_TEST_TOKEN"\n[data]\npassword_env = "TASKCTL_TEST_UNSET"'
    )
    secret = 'to"k$en\\'
    done = _service(project, home, "install", "--platform", platform, TASKCTL_TEST_TOKEN=secret)
    assert done.exit_code == 1, done.stderr
    assert "$TASKCTL_TEST_UNSET (named by the config) is not set here" in done.stderr
    [env_file] = [home / p for p in _files(home) if p.suffix == ".env"]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # What the service will see is what this shell had, as sh reads the file (systemd reads it alike).
    read = subprocess.run(["/bin/sh", "-c", f'. "{env_file}"; printf %s "$TASKCTL_TEST_TOKEN"'], capture_output=True)
    assert read.stdout.decode() == secret
    status = _service(project, home, "status", "--platform", platform)
    assert status.exit_code == 0 and "installed: yes" in status.stdout and "enabled: unknown" in status.stdout

    done = _service(project, home, "uninstall", "--platform", platform)
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("Removed ") == 2 and "Not stopped:" in done.stderr
    assert _files(home) == []
    assert not env_file.parent.exists()
    assert "installed: no" in _service(project, home, "status", "--platform", platform).stdout
    again = _service(project, home, "uninstall", "--platform", platform)
    assert again.exit_code == 1 and again.stderr.startswith("Error: no service is installed for")


def test_print_shows_the_unit_and_changes_nothing(project, home):
    done = _service(project, home, "install", "--print", "--platform", "systemd")
    assert done.exit_code == 0, done.stderr
    assert "KillMode=mixed" in done.stdout and "(mode 0600)" in done.stdout
    assert _files(home) == []


def test_a_bad_platform_is_one_clear_line(project, home):
    done = _service(project, home, "install", "--platform", "windows")
    assert done.exit_code == 2
    assert done.stderr == "Error: --platform must be one of systemd, launchd\n"
    assert _files(home) == []


@pytest.mark.parametrize("platform", ["systemd", "launchd"])
def test_two_projects_in_folders_of_one_name_get_a_service_each(project, home, platform):
    other = project.root / "elsewhere" / project.root.name  # another project, in a folder of the same name
    other.mkdir(parents=True)
    for path in project.root.iterdir():
        if path.is_file() and path.suffix in (".toml", ".py"):
            shutil.copy(path, other / path.name)

    def services() -> list[Path]:
        return [home / p for p in _files(home) if p.suffix in (".service", ".plist")]

    assert _service(project, home, "install", "--platform", platform).exit_code == 1  # no manager to enable it
    [first] = services()
    before = first.read_text()
    environ = {"HOME": str(home), "PATH": str(home.parent / "empty-path"), "USER": "someone"}
    command = ["--config", str(other / "config.toml"), "service", "install", "--platform", platform]
    assert CliRunner().invoke(app, command, env=environ).exit_code == 1
    assert first.read_text() == before  # the first project's service is left as it was
    [second] = [path for path in services() if path != first]
    assert str(other / "config.toml") in second.read_text() and second.stem.startswith(first.stem + "-")
    # Each config finds its own service again: uninstall removes only its own.
    assert _service(project, home, "uninstall", "--platform", platform).exit_code == 0
    assert services() == [second]
