"""The `taskctl` command: a shell completion of a task name or a job id is answered
before the command line (and Huey, rich, redis) is imported; anything else runs it."""

from __future__ import annotations

import os


def main() -> None:
    instruction = os.environ.get("_TASKCTL_COMPLETE")
    if instruction:
        from taskctl.completion import fast

        try:
            answer = fast(instruction)
        except Exception:  # never a traceback in a completion: Typer's own completion answers
            answer = None
        if answer is not None:
            if answer:  # an empty line would be offered as a word
                print(answer)
            return
    from taskctl.cli import main as run

    run()
