"""`make production`: the replicated topology on one machine, under honcho.

    .venv/bin/python scripts/production.py --web 2 --assistant 2 --workers 2 --actions 1

Requires PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`); migrates (never seeds the demo
clinic: create the first admin with `make admin`), then starts N web replicas, M assistant
replicas, K workers and the action servers on consecutive loopback ports from WEB_URL,
BOT_URL and ACTION_SERVER_URL, and Debian's nginx in front of the web replicas — the only
public listener (PROXY_LISTEN). Every command comes from the Procfile, as `make run` starts
it; this script only multiplies the lines, gives each replica its address, and renders the
proxy's configuration from deploy/nginx/omniclinica.conf.template.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.settings import ROOT, VAR, Settings
from models.migrate import upgrade

PROCFILE = ROOT / "Procfile"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "omniclinica.conf.template"
RUN_DIR = VAR / "production"
TLS_DIR = VAR / "tls"
# The proxy connects to the replicas from its own loopback address, so that the replicas can
# believe X-Forwarded-For from it alone (TRUSTED_PROXIES) and not from any local process.
PROXY_SOURCE_ADDRESS = "127.0.0.2"
NGINX_MAIN = """\
worker_processes auto;
pid {run}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/omniclinica.conf;
}}
"""


class ProductionConfigError(SystemExit):
    """Production mode refuses to start half-configured; the message says what to set."""


@dataclass(frozen=True)
class Counts:
    web: int = 2
    assistant: int = 2
    workers: int = 2
    actions: int = 1


def _with_port(url: str, offset: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{host}:{(parts.port or 80) + offset}"))


def _listen_port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def check_production(settings: Settings) -> None:
    """PostgreSQL and Redis, or a clear refusal (in Portuguese and English)."""
    if not settings.database_url.startswith("postgresql"):
        raise ProductionConfigError(
            "Modo de produção exige PostgreSQL: defina DATABASE_URL=postgresql://... "
            "/ Production mode requires PostgreSQL: set DATABASE_URL=postgresql://..."
        )
    if not settings.redis_url:
        raise ProductionConfigError(
            "Modo de produção exige Redis: defina REDIS_URL=redis://... "
            "/ Production mode requires Redis: set REDIS_URL=redis://..."
        )


@dataclass(frozen=True)
class Topology:
    """Where each replica listens and the command that starts it, from the base settings."""

    base: Settings
    counts: Counts
    nginx: str = "/usr/sbin/nginx"
    run_dir: Path = RUN_DIR

    @property
    def web_urls(self) -> list[str]:
        return [_with_port(self.base.web_url, i) for i in range(self.counts.web)]

    @property
    def bot_urls(self) -> list[str]:
        return [_with_port(self.base.bot_url, i) for i in range(self.counts.assistant)]

    @property
    def action_urls(self) -> list[str]:
        return [_with_port(self.base.action_server_url, i) for i in range(self.counts.actions)]

    @property
    def public_base_url(self) -> str:
        if self.base.public_base_url != self.base.web_url:  # set on purpose
            return self.base.public_base_url
        return f"https://127.0.0.1:{_listen_port(self.base.proxy_listen)}"

    def settings(self) -> Settings:
        """What every process of the topology shares: every assistant replica, the proxy's
        public address, and the proxy as the one trusted forwarder."""
        return Settings.from_env(
            {
                **os.environ,
                **self.base.child_env(),
                "BOT_URL": ",".join(self.bot_urls),
                "PUBLIC_BASE_URL": self.public_base_url,
                "TRUSTED_PROXIES": PROXY_SOURCE_ADDRESS,
            }
        )

    def processes(self, commands: dict[str, str]) -> dict[str, str]:
        """Each replica's Procfile command, with its own address exported first."""
        lines: dict[str, str] = {}
        for i, url in enumerate(self.web_urls, 1):
            lines[f"web{i}"] = _line({"WEB_URL": url}, commands["web"])
        for i, url in enumerate(self.bot_urls, 1):
            # Each assistant replica calls one action server; they share the tracker store.
            address = urlsplit(url)
            action_url = self.action_urls[(i - 1) % self.counts.actions]
            replica = {
                "BOT_HOST": address.hostname or "",
                "BOT_PORT": str(address.port),
                "ACTION_SERVER_URL": action_url,
            }
            lines[f"assistant{i}"] = _line(replica, commands["assistant"])
        for i, url in enumerate(self.action_urls, 1):
            lines[f"actions{i}"] = _line({"ACTION_SERVER_URL": url}, commands["actions"])
        for i in range(1, self.counts.workers + 1):
            lines[f"worker{i}"] = _line({}, commands["worker"])
        lines["proxy"] = (
            f"exec {self.nginx} -p {self.run_dir} -c {self.run_dir / 'nginx.conf'} -g 'daemon off;'"
        )
        return lines

    def nginx_values(self, certificate: Path, key: Path) -> dict[str, str]:
        upstreams = " ".join(f"server {urlsplit(url).netloc};" for url in self.web_urls)
        return {
            "UPSTREAM_SERVERS": upstreams,
            "PROXY_LISTEN": self.base.proxy_listen,
            "PROXY_HTTP_LISTEN": self.base.proxy_http_listen,
            "PROXY_HTTPS_PORT": str(_listen_port(self.base.proxy_listen)),
            "TLS_CERTIFICATE": str(certificate),
            "TLS_CERTIFICATE_KEY": str(key),
            "PROXY_SOURCE_ADDRESS": PROXY_SOURCE_ADDRESS,
        }


def _line(exports: dict[str, str], command: str) -> str:
    """A shell line for honcho: the replica's variables exported, then its command in their
    place (so `${BOT_PORT}` in the Procfile's command is this replica's port)."""
    exported = " ".join(f"{name}={value}" for name, value in exports.items())
    return f"export {exported}; exec {command}" if exports else f"exec {command}"


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's process types and their commands."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def render(template: str, values: dict[str, str]) -> str:
    """`${NAME}` placeholders replaced, as the nginx image's envsubst does; a name without a
    value is an error rather than an empty directive."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda match: values[match[1]], template)


def self_signed_certificate(folder: Path = TLS_DIR) -> tuple[Path, Path]:
    """A certificate for trying production mode on this machine (localhost, 127.0.0.1),
    made once; a real clinic sets TLS_CERTIFICATE and TLS_CERTIFICATE_KEY."""
    certificate, key = folder / "selfsigned.crt", folder / "selfsigned.key"
    if not (certificate.exists() and key.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                *(
                    shutil.which("openssl") or "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "365",
                ),
                *("-keyout", str(key), "-out", str(certificate), "-subj", "/CN=localhost"),
                *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
    return certificate, key


def write_run_files(topology: Topology) -> Path:
    """The generated Procfile and the proxy's configuration under var/production/."""
    base = topology.base
    if base.tls_certificate and base.tls_certificate_key:
        certificate, key = Path(base.tls_certificate), Path(base.tls_certificate_key)
    else:
        certificate, key = self_signed_certificate()
    run_dir = topology.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    site = render(NGINX_TEMPLATE.read_text(), topology.nginx_values(certificate, key))
    (run_dir / "omniclinica.conf").write_text(site)
    (run_dir / "nginx.conf").write_text(NGINX_MAIN.format(run=run_dir))
    procfile = run_dir / "Procfile"
    lines = topology.processes(read_procfile())
    procfile.write_text("".join(f"{name}: {command}\n" for name, command in lines.items()))
    return procfile


def _arguments(argv: list[str] | None) -> tuple[Counts, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    defaults = Counts()
    parser.add_argument("--web", type=int, default=defaults.web)
    parser.add_argument("--assistant", type=int, default=defaults.assistant)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--actions", type=int, default=defaults.actions)
    parser.add_argument(
        "--run-dir", type=Path, default=RUN_DIR, help="where the generated files go"
    )
    args = parser.parse_args(argv)
    counts = Counts(args.web, args.assistant, args.workers, args.actions)
    if min(counts.web, counts.assistant, counts.workers, counts.actions) < 1:
        parser.error("every count must be at least 1")
    return counts, args.run_dir.resolve()


def main(argv: list[str] | None = None) -> None:
    counts, run_dir = _arguments(argv)
    base = Settings.from_env()
    check_production(base)
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if nginx is None:
        raise ProductionConfigError(
            "nginx não encontrado / nginx not found: run scripts/ensure-nginx.sh"
        )
    topology = Topology(base, counts, nginx, run_dir)
    settings = topology.settings()
    upgrade(settings.database_url)
    procfile = write_run_files(topology)
    subprocess.run(  # noqa: S603 - the rendered configuration, checked before anything starts
        [nginx, "-t", "-q", "-p", str(run_dir), "-c", str(run_dir / "nginx.conf")], check=True
    )
    print(
        f"omniclinica (production): {counts.web} web, {counts.assistant} assistant, "
        f"{counts.workers} worker, {counts.actions} action server(s) behind "
        f"{topology.public_base_url}/ — Ctrl-C stops everything.",
        flush=True,
    )
    env = {**os.environ, **settings.child_env()}
    honcho = str(ROOT / ".venv" / "bin" / "honcho")
    os.chdir(ROOT)
    os.execve(honcho, [honcho, "-f", str(procfile), "-d", str(ROOT), "start"], env)  # noqa: S606


if __name__ == "__main__":
    main()
