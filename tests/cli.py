"""Run the `addrpool` command in this process, as an operator would run it in a shell.

A subprocess costs seconds of imports per call; `scripts.cli.main.main(argv)` costs
milliseconds. `run_cli` gives each call what a process would have: exactly the environment it
is given, its own stdin, stdout and stderr, its own event loop (a thread of its own, so it works
from async tests too), an exit status for `sys.exit` and for an uncaught exception (with the
traceback on stderr), and it puts back the logging set-up the command changes. The tests that
need a real process (a server or worker starting and stopping on SIGTERM, the devnet demo, the
installed entry point) start one themselves.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

DEADLINE = 120.0  # as the subprocess calls this replaces: a command that hangs fails the test

# The process-wide state a command touches; only one command runs at a time.
_one_at_a_time = threading.Lock()


def run_cli(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`addrpool ARGV` with exactly `env` (default: this process's environment) and `stdin`
    (default: empty). `check` raises CalledProcessError on a non-zero exit, as subprocess.run."""
    args = list(argv)
    out, err = io.StringIO(), io.StringIO()
    with _one_at_a_time, _environment(env), _logging_restored(), _streams(stdin, out, err):
        code = _run_in_thread(args, err)
    done = subprocess.CompletedProcess(["addrpool", *args], code, out.getvalue(), err.getvalue())
    if check:
        done.check_returncode()
    return done


def _run_in_thread(argv: list[str], err: io.StringIO) -> int:
    from scripts.cli.main import main

    codes: list[int] = []

    def run() -> None:
        codes.append(_exit_status(main, argv, err))

    thread = threading.Thread(target=run, name="addrpool-cli", daemon=True)
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        raise TimeoutError(f"addrpool {' '.join(argv)} did not finish in {DEADLINE:.0f} s")
    return codes[0]


def _exit_status(main: object, argv: list[str], err: io.StringIO) -> int:
    """What `python -m scripts.cli.main ARGV` would exit with."""
    try:
        return int(main(argv))  # type: ignore[operator]
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=err)
        return 1
    except BaseException:  # noqa: BLE001 - the interpreter's own last resort, reproduced
        traceback.print_exc(file=err)
        return 1


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()  # a command may set variables of its own (serve sets ADDRPOOL_PORT)
        os.environ.update(saved)


@contextmanager
def _streams(stdin: str | None, out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextmanager
def _logging_restored() -> Iterator[None]:
    """The command configures logging for a process; the tests after it expect pytest's."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in _loggers()}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in _loggers():
            logger.setLevel(levels.get(name, logging.NOTSET))


def _loggers() -> list[tuple[str, logging.Logger]]:
    known = list(logging.Logger.manager.loggerDict.items())
    return [(name, logger) for name, logger in known if isinstance(logger, logging.Logger)]
