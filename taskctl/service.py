"""Starting the consumer at login: a systemd user unit (Linux) or a launchd agent (macOS).

A service does not inherit the shell's environment, so the variables the config
names (`password_env`, `token_env`, any `*_env` key) are written to an
environment file only its owner can read, which the service reads as it starts.
Stopping fits the consumer's: SIGTERM to the consumer alone (systemd's
KillMode=mixed), and a stop timeout longer than its grace period.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from taskctl.config import Settings
from taskctl.errors import NotPossible, UsageError

PLATFORMS = ("systemd", "launchd")
GRACE = 30.0  # seconds running jobs get when the service stops
STOP_MARGIN = 30.0  # the service manager waits this much longer than the grace before it kills
LOG_LINES = 10


def this_platform() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def taskctl_command() -> list[str]:
    "This taskctl, by absolute path: the console script beside this Python, else `python -m taskctl`."
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink out of it
    script = python.parent / "taskctl"
    return [str(script)] if script.is_file() and os.access(script, os.X_OK) else [str(python), "-m", "taskctl"]


def env_names(settings: Settings) -> list[str]:
    "The environment variables the config names: the value of every `*_env` key, in any table."
    # The file itself, not the settings: a key of [taskctl] that a later release adds counts too.
    raw = tomllib.loads(settings.path.read_text())
    return sorted({value for key, value in _items(raw) if key.endswith("_env") and isinstance(value, str) and value})


def _items(table: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _items(value)
        else:
            yield key, value


@dataclass(frozen=True)
class Service:
    "The service of one config, for one platform, in one home."

    platform: str
    settings: Settings
    home: Path
    grace: float = GRACE

    @cached_property
    def name(self) -> str:
        """`taskctl-<folder of the config>`: one service per project. When a service of
        that name runs another config (two projects in folders of one name), a digest of
        this config's path is added, so installing one never replaces the other."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.settings.root.name).strip("-.") or "default"
        name = f"taskctl-{slug}"
        if self._runs_another_config(self._file_of(name)):
            name += (
                "-" + hashlib.sha1(str(self.settings.path.absolute()).encode(), usedforsecurity=False).hexdigest()[:6]
            )
        return name

    @property
    def label(self) -> str:
        return self._label_of(self.name)

    @property
    def file(self) -> Path:
        return self._file_of(self.name)

    def _label_of(self, name: str) -> str:
        return f"io.taskctl.{name.removeprefix('taskctl-')}" if self.platform == "launchd" else name

    def _file_of(self, name: str) -> Path:
        if self.platform == "launchd":
            return self.home / "Library" / "LaunchAgents" / f"{self._label_of(name)}.plist"
        return self.home / ".config" / "systemd" / "user" / f"{name}.service"

    def _runs_another_config(self, path: Path) -> bool:
        if not path.exists():
            return False
        config = str(self.settings.path.absolute())
        if self.platform == "systemd":
            return f" --config {_exec_quote(config)} " not in path.read_text(errors="replace")
        try:
            args = plistlib.loads(path.read_bytes()).get("ProgramArguments", [])
        except Exception:  # not a plist taskctl wrote: not this config's either
            return True
        return not any(flag == "--config" and value == config for flag, value in pairwise(args))

    @property
    def env_file(self) -> Path:
        if self.platform == "launchd":
            return self.home / "Library" / "Application Support" / "taskctl" / f"{self.name}.env"
        return self.home / ".config" / "taskctl" / f"{self.name}.env"

    @property
    def log_file(self) -> Path | None:
        "Where the consumer's output goes; None for systemd, whose journal keeps it."
        return self.home / "Library" / "Logs" / "taskctl" / f"{self.name}.log" if self.platform == "launchd" else None

    @property
    def command(self) -> list[str]:
        config = str(self.settings.path.absolute())
        return [*taskctl_command(), "--config", config, "run-consumer", "--grace", f"{self.grace:g}s"]

    def text(self) -> str:
        "The unit file or the plist, as written."
        return self._plist() if self.platform == "launchd" else self._unit()

    def _unit(self) -> str:
        stop_timeout = int(self.grace + STOP_MARGIN)
        return "\n".join([
            "[Unit]",
            f"Description=taskctl consumer for {_specifiers(str(self.settings.path.absolute()))}",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={' '.join(_exec_quote(arg) for arg in self.command)}",
            "# `systemctl --user reload`: the consumer restarts in place once its running jobs finish.",
            "ExecReload=/bin/kill -HUP $MAINPID",
            f"WorkingDirectory={_specifiers(str(self.settings.root.absolute()))}",
            f"EnvironmentFile=-{_specifiers(str(self.env_file))}",
            "Environment=PYTHONUNBUFFERED=1",
            "Restart=on-failure",
            "RestartSec=5",
            "# SIGTERM to the consumer alone: it stops its worker processes itself, once their jobs finish.",
            "KillMode=mixed",
            f"# Longer than --grace {self.grace:g}s, after which running jobs are interrupted and requeued.",
            f"TimeoutStopSec={stop_timeout}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ])  # fmt: skip

    def _plist(self) -> str:
        # launchd reads no environment file: a shell reads it, then becomes the consumer.
        load_env = 'set -a; . "$1"; set +a; shift; exec "$@"'
        log = str(self.log_file)
        document = {
            "Label": self.label,
            "ProgramArguments": ["/bin/sh", "-c", load_env, "sh", str(self.env_file), *self.command],
            "WorkingDirectory": str(self.settings.root.absolute()),
            "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},  # restart on failure, not after a clean stop
            "ThrottleInterval": 5,
            "ExitTimeOut": int(self.grace + STOP_MARGIN),  # launchd's default, 20 s, is shorter than the grace
            "ProcessType": "Background",
            "StandardOutPath": log,
            "StandardErrorPath": log,
        }
        return plistlib.dumps(document).decode()

    def env_text(self, environ: dict[str, str]) -> tuple[str, list[str]]:
        "The environment file, and the names the config gives that this environment lacks."
        lines, missing = ["# Written by `taskctl service install`: the variables the config names."], []
        for name in env_names(self.settings):
            if name not in environ:
                missing.append(name)
                continue
            value = environ[name]
            if "\n" in value or "\0" in value:
                raise UsageError(f"${name} holds a line break, which an environment file cannot keep; remove it")
            # Double quotes, read alike by systemd and by sh.
            escaped = re.sub(r'(["\\$`])', r"\\\1", value)
            lines.append(f'{name}="{escaped}"')
        return "\n".join(lines) + "\n", missing

    def write(self, environ: dict[str, str]) -> list[str]:
        "Write the service file and the environment file (0600); returns the variables not found."
        env, missing = self.env_text(environ)
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600, never readable by others, not even for a moment.
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(env)
        os.chmod(self.env_file, 0o600)  # a file that existed keeps its mode through O_CREAT
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(self.text())
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        return missing

    def remove(self) -> list[Path]:
        "Delete what `write` made, and the log; returns the files removed."
        removed = []
        for path in (self.file, self.env_file, *([self.log_file] if self.log_file else [])):
            if path.exists():
                path.unlink()
                removed.append(path)
        for folder in (self.env_file.parent, *([self.log_file.parent] if self.log_file else [])):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # our own folder, once empty
        return removed

    # -- the service manager ---------------------------------------------------

    def manager(self) -> str | None:
        "Why the service manager cannot be reached from here, or None when it can."
        tool = "launchctl" if self.platform == "launchd" else "systemctl"
        if self.platform != this_platform():
            return f"this machine does not run {self.platform}"
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
        if self.platform == "systemd":
            probe = _run(["systemctl", "--user", "show-environment"])
            if probe.returncode != 0:
                return f"systemctl --user cannot reach your user manager ({_first_line(probe)})"
        return None

    def activate_commands(self) -> list[list[str]]:
        if self.platform == "launchd":
            return [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(self.file)]]
        return [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", self.file.name]]

    def deactivate_commands(self) -> list[list[str]]:
        if self.platform == "launchd":
            return [["launchctl", "bootout", f"gui/{os.getuid()}/{self.label}"]]
        return [["systemctl", "--user", "disable", "--now", self.file.name]]

    def activate(self) -> None:
        for command in self.activate_commands():
            done = _run(command)
            if done.returncode != 0:
                raise NotPossible(f"`{' '.join(command)}` failed: {_first_line(done)}")

    def deactivate(self) -> None:
        "Stop and disable it; a service that was not loaded is not an error."
        for command in self.deactivate_commands():
            _run(command)
        if self.platform == "systemd":
            _run(["systemctl", "--user", "daemon-reload"])

    def state(self) -> dict[str, Any]:
        "Installed? enabled? running? and the last lines of its log, as far as can be told from here."
        found: dict[str, Any] = {"installed": self.file.exists(), "enabled": None, "running": None, "log": []}
        found["unreachable"] = self.manager()
        if found["unreachable"] is None:
            if self.platform == "systemd":
                unit = self.file.name
                found["enabled"] = _run(["systemctl", "--user", "is-enabled", unit]).stdout.strip() == "enabled"
                found["running"] = _run(["systemctl", "--user", "is-active", unit]).stdout.strip() == "active"
                journal = ["journalctl", "--user", "-u", unit, "-n", str(LOG_LINES), "--no-pager", "-o", "cat"]
                found["log"] = _run(journal).stdout.splitlines()
            else:
                shown = _run(["launchctl", "print", f"gui/{os.getuid()}/{self.label}"])
                found["enabled"] = shown.returncode == 0
                found["running"] = shown.returncode == 0 and "state = running" in shown.stdout
        if self.log_file is not None and self.log_file.exists():
            found["log"] = self.log_file.read_text(errors="replace").splitlines()[-LOG_LINES:]
        return found

    def linger_advice(self) -> str | None:
        "On Linux, how to keep it running with nobody logged in, unless that is done already."
        if self.platform != "systemd":
            return None
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "$USER"
        if Path("/var/lib/systemd/linger", user).exists():
            return None
        return (
            "It runs while you are logged in. To keep it running after you log out, "
            f"and start it at boot: loginctl enable-linger {user}"
        )


def _exec_quote(arg: str) -> str:
    "An ExecStart argument: specifiers and variables escaped, quoted when it has spaces or quotes."
    escaped = _specifiers(arg).replace("$", "$$")
    if re.search(r'[\s"\'\\;]', escaped) or not escaped:
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 1, "", str(exc))


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else f"exit status {done.returncode}"
