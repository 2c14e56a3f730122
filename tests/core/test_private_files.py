"""var/ (database, secrets, logs, outbox) is readable by the service's user only: what a
process finds there is corrected at start-up, and what it creates afterwards is private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from core.private_files import keep_private
from core.settings import ROOT


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _in_a_process(var: Path, code: str) -> None:
    """Run `keep_private(var)` then `code` in a fresh Python, started with a lax umask as a
    careless shell would (the umask is process-wide: not in the test's own process)."""
    script = "import os; from pathlib import Path; from core.private_files import keep_private\n"
    script += f"keep_private(Path({str(var)!r}))\n{code}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", f"import os; os.umask(0o022)\n{script}"], check=True, env=env
    )


def test_what_is_found_under_var_becomes_owner_only(tmp_path):
    var = tmp_path / "var"
    (var / "secrets").mkdir(parents=True, mode=0o755)
    (var / "secrets" / "session_secret").write_text("s")
    (var / "omniclinica.db").write_bytes(b"")
    (var / "outbox").mkdir(mode=0o775)
    (var / "outbox" / "whatsapp.jsonl").write_text("{}\n")
    for path in var.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    elsewhere = tmp_path / "model.tar.gz"
    elsewhere.write_bytes(b"")
    elsewhere.chmod(0o644)
    (var / "rasa").symlink_to(elsewhere)

    _in_a_process(var, "")

    assert _mode(var) == 0o700
    for path in var.rglob("*"):
        if path.is_symlink():
            continue
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(elsewhere) == 0o644  # a link's target is not ours to change


def test_files_and_folders_created_after_start_up_are_private(tmp_path):
    var = tmp_path / "var"

    script_var = repr(str(var))
    _in_a_process(
        var,
        f"v = Path({script_var})\n"
        "(v / 'logs').mkdir()\n"
        "(v / 'logs' / 'web.log').write_text('x')\n"
        "import sqlite3\n"
        "db = sqlite3.connect(v / 'omniclinica.db')\n"
        "db.execute('create table t (a)'); db.commit()\n",
    )

    assert _mode(var / "logs") == 0o700
    assert _mode(var / "logs" / "web.log") == 0o600
    assert _mode(var / "omniclinica.db") == 0o600


def test_a_private_var_is_left_as_it_is(tmp_path):
    var = tmp_path / "var"
    _in_a_process(var, "(Path(" + repr(str(var)) + ") / 'secret').write_text('x')")

    assert keep_private(var) == []
