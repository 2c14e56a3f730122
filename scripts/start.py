"""`make run`: migrate, seed the demo clinic once, then start every process under honcho."""

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
from scripts.demo_clinic import Login, seed_demo_clinic

LOGINS_FILE = VAR / "demo-logins.json"


async def _seed(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        logins = await seed_demo_clinic(db, attendant_capacity=settings.attendant_capacity)
    finally:
        await db.dispose()
    if logins is not None:
        LOGINS_FILE.write_text(json.dumps([asdict(login) for login in logins], ensure_ascii=False))
        LOGINS_FILE.chmod(0o600)


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
    if LOGINS_FILE.exists():
        lines.append("Demo logins (stored in var/demo-logins.json):")
        for login in map(lambda raw: Login(**raw), json.loads(LOGINS_FILE.read_text())):
            lines.append(f"  {login.role:<10} {login.email:<24} {login.password}")
        lines.append("")
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)


def main() -> None:
    # Before anything under var/ is created; honcho and every process inherit the umask.
    keep_private()
    settings = Settings.from_env()
    upgrade(settings.database_url)
    asyncio.run(_seed(settings))
    print(_banner(settings), flush=True)
    env = {**os.environ, **settings.child_env()}
    honcho = str(ROOT / ".venv" / "bin" / "honcho")
    os.chdir(ROOT)
    os.execve(honcho, [honcho, "-f", "Procfile", "start"], env)  # noqa: S606 - becomes honcho


if __name__ == "__main__":
    sys.exit(main())
