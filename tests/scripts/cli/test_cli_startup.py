"""`addrpool` builds its parser without importing a command, and its light commands do not
import the server's, the chains' or the webhooks' HTTP stacks (what makes a call slow)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.cli.main import HANDLERS, handler_for

HEAVY = ("fastapi", "uvicorn", "starlette", "aiohttp", "httpx", "web3")
LIGHT_COMMANDS = (
    "scripts.cli.database",
    "scripts.cli.schema",
    "scripts.cli.keys",
    "scripts.cli.addresses",
    "scripts.cli.alerts",
    "scripts.cli.webhooks",
    "scripts.cli.reconcile",
    "scripts.cli.chains",
    "scripts.cli.deposits",
)


def _imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_command_line_imports_no_command() -> None:
    loaded = _imported_after("scripts.cli.main")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    # Nor the database layer: `addrpool --help` needs argparse only.
    assert "sqlalchemy" not in loaded and "pydantic" not in loaded
    assert not {m for m in loaded if m.startswith("scripts.cli.")} - {
        "scripts.cli.main",
        "scripts.cli.parsers",
        "scripts.cli.output",
    }


@pytest.mark.parametrize("module", LIGHT_COMMANDS)
def test_light_commands_import_no_server_and_no_http_client(module: str) -> None:
    loaded = _imported_after(module)
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_every_command_resolves_to_a_handler() -> None:
    for command, action in HANDLERS:
        assert callable(handler_for(command, action))
