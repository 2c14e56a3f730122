"""`var/` holds the database, the secrets, the logs and the outbox: patient data and the keys
to it. Only the service's user may read it, whatever the umask of whoever started it.

Every entry point calls `keep_private` first: it sets the process's umask to 077, so that
whatever it (or a child: honcho, Rasa with its tracker database) creates is owner-only, and
brings what is already under `var/` to directories 0700 and files 0600, saying in the log
which it corrected (e.g. files written by an older version, or copied in by hand).
Symbolic links are left alone: what they point to is not ours to change.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from core.settings import VAR

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def keep_private(var: Path = VAR) -> list[Path]:
    """Owner-only from now on, and for what is there; the paths whose mode was corrected."""
    os.umask(PRIVATE_UMASK)
    var.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    corrected = []
    for path in [var, *var.rglob("*")]:
        if path.is_symlink():
            continue
        wanted = DIRECTORY_MODE if path.is_dir() else FILE_MODE
        if stat.S_IMODE(path.lstat().st_mode) != wanted:
            path.chmod(wanted)
            corrected.append(path)
    if corrected:
        log.warning(
            "made %d path(s) under %s readable by this user only: %s",
            len(corrected),
            var,
            ", ".join(str(path.relative_to(var.parent)) for path in corrected[:10]),
        )
    return corrected
