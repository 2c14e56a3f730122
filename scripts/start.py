"""`make run`: migrate, seed the demo clinic once (on the embedded default database, or when
SEED_DEMO=true), then start every process under honcho."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict

from core.private_files import keep_private
from core.settings import ROOT, VAR, Settings
from models.db import Database
from models.migrate import upgrade
from scripts.demo_clinic import seed_demo_clinic

LOGINS_FILE = VAR / "demo-logins.json"


async def _seed(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        logins = await seed_demo_clinic(db, attendant_capacity=settings.attendant_capacity)
    finally:
        await db.dispose()
    if logins is not None:
        # Created readable by its owner only, never world-readable for a moment.
        LOGINS_FILE.unlink(missing_ok=True)
        descriptor = os.open(LOGINS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump([asdict(login) for login in logins], out, ensure_ascii=False)


def _banner(settings: Settings) -> str:
    lines = [
        "",
        "omniclinica is starting:",
        f"  clinic site with chat widget  {settings.web_url}/",
        f"  patient sign-up and portal    {settings.web_url}/cadastro",
        f"  staff workspace               {settings.web_url}/staff",
        f"  staff agenda                  {settings.web_url}/staff/agenda",
        f"  indicators (managers)         {settings.web_url}/staff/metrics",
        f"  admin (staff, clinic data)    {settings.web_url}/staff/admin",
        f"  provider webhooks             {settings.public_base_url}/webhooks/<channel>/webhook",
        "",
    ]
    if settings.seed_demo and LOGINS_FILE.exists():
        # Never the passwords themselves: a console is often captured to a log.
        lines.append(f"Demo logins: {LOGINS_FILE.relative_to(ROOT)} (readable by you only)")
        lines.append("")
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)


def main() -> None:
    # Before anything under var/ is created; honcho and every process inherit the umask.
    keep_private()
    settings = Settings.from_env()
    upgrade(settings.database_url)
    if settings.seed_demo:
        asyncio.run(_seed(settings))
    print(_banner(settings), flush=True)
    env = {**os.environ, **settings.child_env()}
    honcho = str(ROOT / ".venv" / "bin" / "honcho")
    os.chdir(ROOT)
    os.execve(honcho, [honcho, "-f", "Procfile", "start"], env)  # noqa: S606 - becomes honcho


if __name__ == "__main__":
    sys.exit(main())
