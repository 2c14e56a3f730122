"""How many tries a login, a sign-up or a reset request gets, on the shared limiter.

Logins: failures are counted per typed account and per client address. After `LIMIT`
failures within `WINDOW`, the key is locked for `WINDOW`, and each further lock within a day
doubles (15 min, 30 min, 1 h ... up to 8 h); an admin can lift an account's lock. The account
key is the typed address, keyed with the clinic's secret, whether or not it has an account:
known and unknown addresses lock alike, and no address is kept in the limiter in clear.

Known devices (OWASP's device cookie): a successful login gives the browser a signed cookie
naming that account. A login to that account from that browser is counted on the device
alone, not on the account or the address, so neither an attacker guessing that account's
password nor a flood from the same address (a clinic behind one NAT) locks its owner out of
the browser they use; the attacker, without the cookie, stays held to both limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from core.contacts import normalize_email
from core.errors import TooManyRequests
from core.ratelimit import RateLimits

LIMIT = 10
# A client address may fail more often than one account: several people share a clinic's
# address, and each has their own account limit anyway.
IP_LIMIT = 30
WINDOW = 15 * 60.0
MAX_DOUBLINGS = 5
STRIKE_MEMORY = 24 * 3600.0
# Sign-ups and reset requests per hour: per client address, and per typed address or CPF
# (nobody can make the clinic mail-bomb someone).
MAILS_WINDOW = 3600.0
MAILS_PER_ADDRESS = 3
MAILS_PER_CLIENT = 10


def _keyed(secret: str, kind: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]


def account_key(secret: str, email: str) -> str:
    """The login limiter's name for a typed address, the same for known and unknown ones."""
    typed = normalize_email(email) or email.strip().lower()
    return "acct:" + _keyed(secret, "account", typed)


def ip_key(ip: str) -> str:
    return "ip:" + ip


def device_cookie(secret: str, account: str) -> str:
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_keyed(secret, f'device|{account}', nonce)}"


def device_key(secret: str, account: str, cookie: str | None) -> str | None:
    """The device's key when `cookie` was given to this browser at a login to `account`."""
    nonce, _, signature = (cookie or "").partition(".")
    expected = _keyed(secret, f"device|{account}", nonce)
    if not nonce or not hmac.compare_digest(signature, expected):
        return None
    return "device:" + nonce


def login_keys(secret: str, account: str, ip: str, cookie: str | None) -> dict[str, int]:
    """The counters a login attempt is held to, with their limits."""
    device = device_key(secret, account, cookie)
    if device is not None:
        return {device: LIMIT}
    return {account: LIMIT, ip_key(ip): IP_LIMIT}


async def check(limits: RateLimits, keys: dict[str, int]) -> None:
    """TooManyRequests while any of the keys is locked."""
    wait = max([await limits.peek(f"login:lock:{key}", 1) for key in keys], default=0.0)
    if wait > 0:
        raise TooManyRequests(wait)


async def count_failure(limits: RateLimits, keys: dict[str, int]) -> None:
    for key, limit in keys.items():
        failures = f"login:fail:{key}"
        await limits.hit(failures, limit, WINDOW)
        if await limits.peek(failures, limit) == 0:
            continue
        strikes = f"login:strikes:{key}"
        doublings = 0
        while doublings < MAX_DOUBLINGS and await limits.peek(strikes, doublings + 1) > 0:
            doublings += 1
        await limits.hit(strikes, MAX_DOUBLINGS + 1, STRIKE_MEMORY)
        await limits.hit(f"login:lock:{key}", 0, WINDOW * 2**doublings)
        await limits.clear(failures)


async def succeeded(limits: RateLimits, account: str) -> None:
    """A right password: the account's earlier failures are forgotten (not its address's:
    one known password must not reset the count of a spray across accounts)."""
    await limits.clear(f"login:fail:{account}")


async def locked_for(limits: RateLimits, account: str) -> float:
    return await limits.peek(f"login:lock:{account}", 1)


async def lift(limits: RateLimits, account: str) -> None:
    for counter in ("fail", "lock", "strikes"):
        await limits.clear(f"login:{counter}:{account}")


async def spend_mail(limits: RateLimits, secret: str, action: str, ip: str, *typed: str) -> None:
    """Count a request that may mail someone (a sign-up, a reset request): TooManyRequests
    beyond the limits per client address and per typed address or CPF."""
    waits = [await limits.hit(f"{action}:ip:{ip}", MAILS_PER_CLIENT, MAILS_WINDOW)]
    for value in typed:
        key = f"{action}:typed:{_keyed(secret, action, value.strip().lower())}"
        waits.append(await limits.hit(key, MAILS_PER_ADDRESS, MAILS_WINDOW))
    if max(waits) > 0:
        raise TooManyRequests(max(waits))
