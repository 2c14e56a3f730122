"""`make admin`: create a real clinic's first admin in DATABASE_URL, who then creates the rest
of the team at /staff/admin. The password is typed twice without echo (or, for automation,
read from the first line of standard input with `--password-stdin`); it is never printed,
logged or passed on the command line, where `ps` would show it.

    .venv/bin/python -m processes.create_admin
    printf '%s\\n' "$SENHA" | .venv/bin/python -m processes.create_admin \\
        --name "Maria" --email maria@clinica.com.br --password-stdin
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from getpass import getpass

from accounts.admin import AdminError, check_admin_password, create_first_admin
from core.catalog import t
from core.settings import Settings
from models.db import Database
from models.migrate import upgrade

PASSWORD_ATTEMPTS = 3


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m processes.create_admin",
        description="Cria o(a) primeiro(a) administrador(a) da clínica.",
    )
    parser.add_argument("--name", help="nome (perguntado se faltar)")
    parser.add_argument("--email", help="e-mail de login (perguntado se faltar)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="lê a senha da primeira linha da entrada padrão, sem perguntar",
    )
    parser.add_argument(
        "--another",
        action="store_true",
        help="cria mesmo que a clínica já tenha um(a) administrador(a) ativo(a)",
    )
    return parser.parse_args(argv)


def _typed_password(email: str) -> str:
    """Asked twice, without echo, until both agree and it is strong enough."""
    for _ in range(PASSWORD_ATTEMPTS):
        password = getpass("Senha: ")
        if getpass("Repita a senha: ") != password:
            print("As senhas não conferem. Tente de novo.", file=sys.stderr)
            continue
        try:
            return check_admin_password(password, email)
        except AdminError as exc:
            print(t(exc.code, **exc.values), file=sys.stderr)
    raise SystemExit("Nenhuma senha válida; nada foi criado.")


async def _create(settings: Settings, name: str, email: str, password: str, another: bool) -> None:
    db = Database(settings.database_url)
    try:
        await create_first_admin(
            db, name=name, email=email, password=password, allow_another=another
        )
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    name = args.name or input("Nome: ")
    email = args.email or input("E-mail: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _typed_password(email)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    try:
        asyncio.run(_create(settings, name, email, password, args.another))
    except AdminError as exc:
        print(t(exc.code, **exc.values), file=sys.stderr)
        return 1
    print("Administrador(a) criado(a). Entre em /staff com o e-mail informado.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
