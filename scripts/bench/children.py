"""Running a measured child process: an environment free of the caller's settings, its output
kept in a log, its result read back from the JSON file it wrote."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def clean_env(**extra: str) -> dict[str, str]:
    """No stray ADDRPOOL_ setting from the caller's shell leaks into a measured process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    return {**env, "ADDRPOOL_LOG_LEVEL": "WARNING", **extra}


def run_measured(
    argv: Sequence[str], *, work: Path, log_path: Path, result_path: Path, what: str
) -> dict[str, Any]:
    """Run `argv` in `work` to the end; a failure raises with the log's tail, named `what`."""
    with log_path.open("wb") as log:
        done = subprocess.run(argv, cwd=work, env=clean_env(), stdout=log, stderr=log, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{log_path.read_text()[-3000:]}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result
