"""Shell completion of task names and job ids, read from the config and the record.

A completion runs on every Tab, so it must answer at once: it never imports
the task modules, only reads their source for the decorated functions, and
asks the record two bounded questions. Completing a task name or a job id
(the words that need the record) is answered by `fast` before the command
line, Huey and rich are imported; other words go through Typer's completion.
Any problem (no config, no database) completes nothing rather than an error.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

DECORATORS = {"task", "periodic", "periodic_task", "db_task", "db_periodic_task"}
RETENTION_TASK = "taskctl.retention.prune"
MAX_IDS = 50


def task_names(ctx: Any, incomplete: str) -> list[str]:
    "Task names that start with what was typed (Typer's completion)."
    return task_names_of(_Lazy(None, ctx)(), incomplete)


def job_ids(ctx: Any, incomplete: str) -> list[str]:
    "Ids of the record that start with what was typed (Typer's completion)."
    return job_ids_of(_Lazy(None, ctx)(), incomplete)


def task_names_of(settings: Any, incomplete: str) -> list[str]:
    "The tasks the modules declare and the record has run: full names, or suffixes that start with `incomplete`."
    try:
        names = set(declared_tasks(settings.root, settings.modules)) | set(settings.schedules)
        names |= set(_record(settings).tasks_with_history())
        if settings.retention.schedule:
            names.add(RETENTION_TASK)
    except Exception:
        return []
    return offered(names, incomplete)


def job_ids_of(settings: Any, incomplete: str) -> list[str]:
    "Ids of the record that start with `incomplete` (at most 50)."
    try:
        return _record(settings).job_ids(incomplete, MAX_IDS)
    except Exception:
        return []


def offered(names: set[str], typed: str) -> list[str]:
    """What a shell offers (it keeps only words that start with what was typed): full names,
    and the unique suffixes that start with it, which `enqueue` and `--task` accept too."""
    if not typed:
        return sorted(names)
    suffixes: dict[str, set[str]] = {}
    for name in names:
        parts = name.split(".")
        for i in range(len(parts)):
            suffixes.setdefault(".".join(parts[i:]), set()).add(name)
    found = set()
    for suffix, owners in suffixes.items():
        if suffix.startswith(typed):
            found |= {suffix} if len(owners) == 1 else owners
    return sorted(found)


def declared_tasks(root: Path, modules: tuple[str, ...]) -> list[str]:
    "The tasks a module declares with a decorator, read from its source (module.function, or its name=)."
    found = []
    for module in modules:
        base = root / module.replace(".", "/")
        source = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        if source is None:
            continue
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    if (name := _declared_name(decorator, node.name)) is not None:
                        found.append(f"{module}.{name}")
                        break
    return found


def _declared_name(decorator: ast.expr, function: str) -> str | None:
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    called = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if called not in DECORATORS:
        return None
    for keyword in call.keywords if call else []:
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
            return keyword.value.value
    return function


class _Lazy:
    "The settings, loaded when asked (None when the config cannot be read)."

    def __init__(self, config: str | None, ctx: Any = None) -> None:
        self.config, self.ctx = config, ctx

    def __call__(self) -> Any:
        from taskctl.config import load_settings

        try:
            # In Typer's completion the root command's callback has not run: --config is in its params.
            config = self.ctx.find_root().params.get("config") if self.ctx is not None else self.config
            return load_settings(Path(config) if config else None)
        except Exception:
            return None


# Options that take a value (the next word), so that word is not a positional.
_VALUED = {"--config", "-c", "--delay", "--at", "--priority", "--timeout", "--limit", "--interval", "--since",
           "--state", "--task", "--older-than", "--to", "--password-env", "--workers", "--worker-type"}  # fmt: skip
_FIRST_IS_TASK = {"enqueue", "results"}
_JOB_IDS = {"show", "cancel", "retry"}


def fast(instruction: str) -> str | None:
    """The answer to a completion request ($_TASKCTL_COMPLETE=complete_bash...) for a task
    name or a job id, without importing the command line; None to leave it to Typer."""
    shell = instruction.partition("_")[2]
    if not instruction.startswith("complete_"):
        return None
    if shell == "bash":  # Typer's bash answer is a word a line; parsed as click does, with shlex
        words = _split(os.environ["COMP_WORDS"])
        cword = int(os.environ["COMP_CWORD"])
        answer = _answer(words[1:cword], words[cword] if cword < len(words) else "")
        return "\n".join(answer()) if answer is not None else None
    # Typer's shell classes parse the other shells' requests and format the answer; a private
    # module of Typer, so any surprise falls back to Typer's own (slower) completion.
    from typer import _completion_classes as shells

    classes: dict[str, Any] = {"zsh": shells.ZshComplete, "fish": shells.FishComplete,
                               "powershell": shells.PowerShellComplete, "pwsh": shells.PowerShellComplete}  # fmt: skip
    if shell not in classes:
        return None
    request = classes[shell](None, {}, "taskctl", "_TASKCTL_COMPLETE")
    args, incomplete = request.get_completion_args()
    answer = _answer(args, incomplete)
    if answer is None:
        return None
    values = answer()
    request.get_completions = lambda args, incomplete: [shells.CompletionItem(v) for v in values]  # type: ignore[method-assign]
    return str(request.complete())


def _split(line: str) -> list[str]:
    "Words as a shell splits them; an unclosed quote (the word being typed) ends the last word."
    import shlex

    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split, lexer.commenters = True, ""
    words: list[str] = []
    try:
        words.extend(lexer)
    except ValueError:
        words.append(lexer.token)
    return words


def _answer(args: list[str], incomplete: str) -> Callable[[], list[str]] | None:
    "What completes `incomplete` after `args`, if it is a task name or a job id."
    config, command, positionals, previous = os.environ.get("TASKCTL_CONFIG"), None, 0, None
    for word in args:
        if previous in _VALUED:
            if previous in ("--config", "-c") and command is None:
                config = word
            previous = None
            continue
        if word.startswith("--config="):
            config = word.partition("=")[2]
        elif word.startswith("-"):
            previous = word
            continue
        elif command is None:
            command = word
        else:
            positionals += 1
        previous = None
    if command is None or incomplete.startswith("-"):
        return None
    settings = _Lazy(config)
    if previous == "--task":
        return lambda: task_names_of(settings(), incomplete)
    if previous in _VALUED:
        return None
    if command in _FIRST_IS_TASK and positionals == 0:
        return lambda: task_names_of(settings(), incomplete)
    if command in _JOB_IDS and (positionals == 0 or command != "show"):
        return lambda: job_ids_of(settings(), incomplete)
    return None


def _record(settings: Any) -> Any:
    from taskctl.engines import open_record

    return open_record(settings, read_only=True)
