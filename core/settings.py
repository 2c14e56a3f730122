"""Process-wide configuration read from the environment.

Every platform process (web, worker, actions) builds one `Settings` at start-up and passes
it down; nothing else reads `os.environ`. Defaults give the embedded single-machine setup:
SQLite under `var/`, console outbox, every service on loopback. The assistant (Rasa) reads
the few variables it needs (`child_env`) from its own environment.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from core.encryption import DataKeys, new_key_spec
from models.db import is_sqlite, tracker_url

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
CLINIC_TIMEZONE = "America/Sao_Paulo"
# Each channel reads its own variables (channels/<name>.py) from these.
CHANNEL_ENV_PREFIXES = (
    "WHATSAPP_",
    "MESSENGER_",
    "INSTAGRAM_",
    "META_",
    "TWILIO_",
    "TELEGRAM_",
    "SMTP_",
    "IMAP_",
    "EMAIL_",
)


# Each channel's send-rate cap (messages per second) when SEND_RATES does not set it, from the
# providers' documented throughput (sources in docs/send-rates.md). Keys are send lanes: a
# channel, or for Twilio its WhatsApp and SMS senders, whose caps differ.
DEFAULT_SEND_RATES: Mapping[str, float] = {
    "whatsapp": 80,  # Cloud API, per business phone number, by default
    "twilio_whatsapp": 10,  # Twilio's default text throughput per WhatsApp sender
    "twilio_sms": 1,  # a long code number: one segment per second
    "messenger": 300,  # Send API, text, per Page
    "instagram": 300,  # Send API, text, per Instagram account
    "telegram": 30,  # Bot FAQ: about 30 messages per second to different users
    "email": 5,  # our choice: well within what SMTP relays accept
}


def parse_send_rates(spec: str) -> dict[str, float]:
    """`SEND_RATES`: comma-separated `<lane>=<messages per second>` over the defaults; 0 lifts
    a lane's cap. "whatsapp=20,email=1" = a coexistence number and a strict SMTP relay."""
    rates = dict(DEFAULT_SEND_RATES)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        lane, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not lane.strip() or not 0 <= rate < math.inf:
            raise ValueError(f"bad item {item!r} in SEND_RATES: use e.g. whatsapp=80,email=5")
        rates[lane.strip()] = rate
    return rates


def format_send_rates(rates: Mapping[str, float]) -> str:
    return ",".join(f"{lane}={rate:g}" for lane, rate in rates.items())


def _secret_from_file(
    name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)
) -> str:
    """A random secret generated once and kept under var/, so restarts keep sessions valid."""
    path = VAR / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


RASA_SCHEMA = "rasa"


def _tracker_url_beside(database_url: str) -> str:
    """Rasa's tracker store keyed to the same database as the history: its sender ids are
    our patient ids, so a tracker must never outlive (or predate) the database they index."""
    if is_sqlite(database_url):
        return database_url.removesuffix(".db") + "-rasa.db"
    return tracker_url(database_url)


def _port(url: str) -> str:
    return str(urlsplit(url).port)


def _host(url: str) -> str:
    return urlsplit(url).hostname or "127.0.0.1"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The browser origin of a URL, as an `Origin` header spells it: lower-case
    scheme://host, with the port only when it is not the scheme's default."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port in (None, _DEFAULT_PORTS.get(scheme)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{parts.port}"


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    database_url: str
    internal_token: str
    session_secret: str
    # Keys sealing secrets kept in the database (core/encryption.py), the current first.
    data_encryption_key: str
    web_url: str
    # Every assistant replica (`BOT_URL`, comma-separated); each patient talks to one of them.
    bot_urls: tuple[str, ...]
    rasa_token: str
    action_server_token: str
    public_base_url: str
    action_server_url: str = "http://127.0.0.1:5055/webhook"
    rasa_tracker_url: str = ""
    # Redis, required in production mode (replicas): live push across web replicas, shared
    # rate limits. Empty on the embedded default, where one process of each kind runs.
    redis_url: str = ""
    # Addresses (or networks) of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    # Origins of the sites allowed to embed the chat widget (its socket refuses others);
    # empty: only the platform's own, which serves the demo clinic page.
    widget_origins: tuple[str, ...] = ()
    attendant_capacity: int = 5
    # An assigned conversation with no staff reply after this long is requeued (0: never).
    reassign_after_seconds: int = 180
    # An attendant whose workspace has been closed this long is set offline (0: never).
    presence_timeout_seconds: int = 90
    # A conversation the bot owns with no message in either direction for this long closes
    # (handoff.timers); the patient's next message opens a new one. 0: never.
    idle_close_hours: int = 24
    # Whether attendants may take a conversation from the queue themselves.
    manual_take: bool = True
    # When the reception answers, in clinic time: "weekdays HH:MM-HH:MM; ..." (0 is Monday).
    staff_hours: str = "0-4 08:00-18:00; 5 08:00-12:00"
    # When reminders go out: see scheduling.reminders.parse_offsets for the syntax.
    reminder_offsets: str = "24h,2h@24h"
    # A login session (staff or patient) unused this long ends; every request slides it.
    session_idle_minutes: int = 30
    # A patient with no activity (message, appointment, sign-up) for this many days has their
    # personal data erased; appointments stay, anonymised (accounts.erasure). 0: never.
    retention_days: int = 1825
    # A patient holds at most this many active future appointments per specialty (staff may
    # book beyond it, explicitly and audited), and changes their own agenda (bookings,
    # cancellations, moves through the bot or the portal) at most this many times an hour.
    max_active_appointments_per_specialty: int = 2
    booking_changes_per_hour: int = 5
    # Whether `make run` seeds the demo clinic (staff with random passwords, a sample agenda):
    # on the embedded default unless told otherwise, never into a configured database unless
    # asked (`SEED_DEMO=true`), so a production database starts empty.
    seed_demo: bool = False
    # Production mode's reverse proxy (`make production`): where it listens for HTTPS and for
    # plain HTTP (redirected), and its certificate; empty paths get a self-signed one under var/.
    proxy_listen: str = "0.0.0.0:8443"
    proxy_http_listen: str = "0.0.0.0:8080"
    tls_certificate: str = ""
    tls_certificate_key: str = ""
    # Messages per second each send lane may carry, across every process (messaging.outbound).
    send_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SEND_RATES))
    # Where files patients and staff exchange are kept (`messaging.files`): "filesystem"
    # under `files_dir`, or "s3" in an S3-compatible bucket; and the largest file taken, in
    # bytes.
    files_store: str = "filesystem"
    files_dir: str = str(VAR / "files")
    max_file_bytes: int = 16 * 1024 * 1024
    # The S3 store: its bucket; the service's URL (empty: AWS itself); the region; the access
    # key (empty: botocore's own chain, e.g. an instance role); a folder for the keys in a
    # shared bucket; the encryption at rest asked of the service ("AES256", "aws:kms", or
    # "none" where the service offers none).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_prefix: str = ""
    s3_server_side_encryption: str = "AES256"
    channel_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        database_url = env.get("DATABASE_URL") or f"sqlite:///{VAR / 'omniclinica.db'}"
        web_url = env.get("WEB_URL", "http://127.0.0.1:8000")
        bot_urls = tuple(
            url.strip().rstrip("/")
            for url in env.get("BOT_URL", "http://127.0.0.1:5005").split(",")
            if url.strip()
        )
        return cls(
            database_url=database_url,
            internal_token=env.get("INTERNAL_TOKEN") or _secret_from_file("internal_token"),
            session_secret=env.get("SESSION_SECRET") or _secret_from_file("session_secret"),
            data_encryption_key=env.get("DATA_ENCRYPTION_KEY")
            or _secret_from_file("data_encryption_key", lambda: new_key_spec("1")),
            web_url=web_url.rstrip("/"),
            bot_urls=bot_urls or ("http://127.0.0.1:5005",),
            rasa_token=env.get("RASA_TOKEN") or _secret_from_file("rasa_token"),
            action_server_token=(
                env.get("ACTION_SERVER_TOKEN") or _secret_from_file("action_server_token")
            ),
            public_base_url=env.get("PUBLIC_BASE_URL", web_url).rstrip("/"),
            action_server_url=env.get("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook"),
            rasa_tracker_url=env.get("RASA_TRACKER_URL") or _tracker_url_beside(database_url),
            redis_url=env.get("REDIS_URL", ""),
            trusted_proxies=tuple(
                part.strip() for part in env.get("TRUSTED_PROXIES", "").split(",") if part.strip()
            ),
            widget_origins=tuple(
                origin_of(part) for part in env.get("WIDGET_ORIGINS", "").split(",") if part.strip()
            ),
            attendant_capacity=int(env.get("ATTENDANT_CAPACITY", "5")),
            reassign_after_seconds=int(env.get("REASSIGN_AFTER_SECONDS", "180")),
            presence_timeout_seconds=int(env.get("PRESENCE_TIMEOUT_SECONDS", "90")),
            idle_close_hours=int(env.get("IDLE_CLOSE_HOURS", "24")),
            manual_take=env.get("MANUAL_TAKE", "true").lower() in ("1", "true", "yes"),
            staff_hours=env.get("STAFF_HOURS", "0-4 08:00-18:00; 5 08:00-12:00"),
            reminder_offsets=env.get("REMINDER_OFFSETS", "24h,2h@24h"),
            session_idle_minutes=int(env.get("SESSION_IDLE_MINUTES", "30")),
            retention_days=int(env.get("RETENTION_DAYS", "1825")),
            max_active_appointments_per_specialty=int(
                env.get("MAX_ACTIVE_APPOINTMENTS_PER_SPECIALTY", "2")
            ),
            booking_changes_per_hour=int(env.get("BOOKING_CHANGES_PER_HOUR", "5")),
            seed_demo=_flag(env.get("SEED_DEMO"), default=not env.get("DATABASE_URL")),
            proxy_listen=env.get("PROXY_LISTEN", "0.0.0.0:8443"),
            proxy_http_listen=env.get("PROXY_HTTP_LISTEN", "0.0.0.0:8080"),
            tls_certificate=env.get("TLS_CERTIFICATE", ""),
            tls_certificate_key=env.get("TLS_CERTIFICATE_KEY", ""),
            send_rates=parse_send_rates(env.get("SEND_RATES", "")),
            files_store=env.get("FILES_STORE", "filesystem").strip().lower(),
            files_dir=env.get("FILES_DIR") or str(VAR / "files"),
            max_file_bytes=int(env.get("MAX_FILE_BYTES", str(16 * 1024 * 1024))),
            s3_bucket=env.get("S3_BUCKET", "").strip(),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL", "").strip().rstrip("/"),
            s3_region=env.get("S3_REGION", "").strip() or "us-east-1",
            s3_access_key_id=env.get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=env.get("S3_SECRET_ACCESS_KEY", ""),
            s3_prefix=env.get("S3_PREFIX", "").strip().strip("/"),
            s3_server_side_encryption=env.get("S3_SERVER_SIDE_ENCRYPTION", "").strip() or "AES256",
            channel_env={k: v for k, v in env.items() if k.startswith(CHANNEL_ENV_PREFIXES)},
        )

    def __post_init__(self) -> None:
        self.data_keys  # noqa: B018 — a malformed DATA_ENCRYPTION_KEY fails at start-up

    @property
    def data_keys(self) -> DataKeys:
        return DataKeys.parse(self.data_encryption_key)

    @property
    def own_origins(self) -> frozenset[str]:
        """The platform's own pages: its public address and the address it listens on."""
        return frozenset({origin_of(self.public_base_url), origin_of(self.web_url)})

    @property
    def embedding_origins(self) -> frozenset[str]:
        """The sites whose pages may open the chat widget's socket."""
        return frozenset(self.widget_origins) or self.own_origins

    @property
    def https(self) -> bool:
        """Served on https: cookies only over TLS, HSTS."""
        return self.public_base_url.startswith("https://")

    @property
    def bot_url(self) -> str:
        """The first assistant replica: the one `make run` starts."""
        return self.bot_urls[0]

    def child_env(self) -> dict[str, str]:
        """The environment every process of the clinic is started with."""
        return {
            "DATABASE_URL": self.database_url,
            "INTERNAL_TOKEN": self.internal_token,
            "SESSION_SECRET": self.session_secret,
            "DATA_ENCRYPTION_KEY": self.data_encryption_key,
            "WEB_URL": self.web_url,
            "BOT_URL": ",".join(self.bot_urls),
            "RASA_TOKEN": self.rasa_token,
            "ACTION_SERVER_TOKEN": self.action_server_token,
            "PUBLIC_BASE_URL": self.public_base_url,
            "ACTION_SERVER_URL": self.action_server_url,
            "RASA_TRACKER_URL": self.rasa_tracker_url,
            "REDIS_URL": self.redis_url,
            "TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "WIDGET_ORIGINS": ",".join(self.widget_origins),
            # On PostgreSQL, Rasa's `events` table lives in the `rasa` schema (migration 0002).
            "POSTGRESQL_SCHEMA": RASA_SCHEMA,
            "BOT_HOST": _host(self.bot_url),
            "BOT_PORT": _port(self.bot_url),
            "ATTENDANT_CAPACITY": str(self.attendant_capacity),
            "REASSIGN_AFTER_SECONDS": str(self.reassign_after_seconds),
            "PRESENCE_TIMEOUT_SECONDS": str(self.presence_timeout_seconds),
            "IDLE_CLOSE_HOURS": str(self.idle_close_hours),
            "MANUAL_TAKE": "true" if self.manual_take else "false",
            "STAFF_HOURS": self.staff_hours,
            "REMINDER_OFFSETS": self.reminder_offsets,
            "SESSION_IDLE_MINUTES": str(self.session_idle_minutes),
            "RETENTION_DAYS": str(self.retention_days),
            "SEND_RATES": format_send_rates(self.send_rates),
            "FILES_STORE": self.files_store,
            "FILES_DIR": self.files_dir,
            "MAX_FILE_BYTES": str(self.max_file_bytes),
            "S3_BUCKET": self.s3_bucket,
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
            "S3_REGION": self.s3_region,
            "S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "S3_PREFIX": self.s3_prefix,
            "S3_SERVER_SIDE_ENCRYPTION": self.s3_server_side_encryption,
            # The action server books for the bot under the same limits as the web.
            "MAX_ACTIVE_APPOINTMENTS_PER_SPECIALTY": str(
                self.max_active_appointments_per_specialty
            ),
            "BOOKING_CHANGES_PER_HOUR": str(self.booking_changes_per_hour),
            "RASA_TELEMETRY_ENABLED": "false",
            # Rasa's dependencies flood the console with deprecation warnings at start-up.
            "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::PendingDeprecationWarning",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            # Rasa's SQL tracker store would otherwise open a 50+100 connection pool.
            "SQL_POOL_SIZE": "5",
            "SQL_MAX_OVERFLOW": "5",
            **self.channel_env,
        }
