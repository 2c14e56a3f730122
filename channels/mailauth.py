"""Whether an inbound mail really comes from the address in its From header.

The From header is whatever the sender typed: on its own it proves nothing, and forged mail
must never speak for a patient (cancel their appointment, be filed in their history). A mail
counts as authenticated when either
- it carries a DKIM signature that verifies against the key its domain publishes in DNS, made
  by a domain aligned with the From domain (DMARC's relaxed alignment: the same domain, or one
  a parent of the other) — what DMARC calls a pass through DKIM; SPF cannot be checked here
  (a webhook or an IMAP inbox does not know the connecting server's address), so an aligned
  DKIM pass is the only way this module passes a mail by itself; or
- the clinic's own receiving relay, named by `EMAIL_TRUSTED_AUTHSERV_ID`, says so in its
  `Authentication-Results` header (RFC 8601): `dmarc=pass` for the From domain, or an aligned
  `dkim=pass`. Only the header carrying that authserv-id counts (the relay must remove
  headers claiming its id from incoming mail, as RFC 8601 §5 requires); headers added by
  anyone else, like the sender, are ignored.

Everything else (unsigned, a bad signature, a signature of another domain, a body-length
limited signature, more than one From) is unauthenticated: `channels.email` files it apart
from every patient and hands it to a person.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses

import dkim
from dkim.dnsplug import get_txt
from dkim.util import InvalidTagValueList, parse_tag_value

log = logging.getLogger(__name__)

# dkimpy's DNS interface: a TXT record's bytes by name (None when there is none).
TxtLookup = Callable[..., bytes | None]
DNS_TIMEOUT = 5
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9-]+)\s*=\s*([a-z]+)\b(.*)$", re.I | re.S)
_PROPERTY = re.compile(r"([a-z0-9-]+\.[a-z0-9-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.I)


def from_domain(mail: EmailMessage) -> str | None:
    """The domain of the single address of the single From header, lower-case; None for
    anything else (two From headers or addresses are a known way around DKIM checks)."""
    headers = mail.get_all("From") or []
    if len(headers) != 1:
        return None
    addresses = [address for _, address in getaddresses([str(headers[0])]) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    return addresses[0].rpartition("@")[2].strip().rstrip(".").lower() or None


def aligned(signer: str, domain: str) -> bool:
    """DMARC relaxed alignment without a public-suffix list: the same domain, or one a
    subdomain of the other. A parent that is a public suffix (`com.br`) would have to publish
    a DKIM key of its own, which registries do not."""
    signer = signer.strip().rstrip(".").lower()
    return bool(signer) and (
        signer == domain or domain.endswith(f".{signer}") or signer.endswith(f".{domain}")
    )


def _dkim_signatures(verifier: dkim.DKIM) -> list[dict[bytes, bytes]]:
    found = []
    for name, value in verifier.headers:
        if name.lower() != b"dkim-signature":
            continue
        try:
            found.append(parse_tag_value(value))
        except InvalidTagValueList:
            found.append({})
    return found


def dkim_pass(raw: bytes, domain: str, lookup: TxtLookup) -> bool:
    """Some DKIM signature of the mail verifies and its d= is aligned with `domain`.
    Signatures limited to part of the body (l=) do not count: text appended after the
    signed part would pass as the sender's."""
    verifier = dkim.DKIM(raw, timeout=DNS_TIMEOUT)
    for index, tags in enumerate(_dkim_signatures(verifier)):
        signer = tags.get(b"d", b"").decode("ascii", "replace")
        if b"l" in tags or not aligned(signer, domain):
            continue
        try:
            if verifier.verify(idx=index, dnsfunc=lookup):
                return True
        except dkim.DKIMException as exc:
            log.info("DKIM signature %s did not verify (%s)", index, type(exc).__name__)
    return False


def _results(header: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """An Authentication-Results header as (authserv-id, [(method, result, properties)])."""
    text = _COMMENT.sub(" ", header)
    authserv, *statements = text.split(";")
    results = []
    for statement in statements:
        if match := _RESULT.match(statement):
            method, result, rest = match.groups()
            properties = {k.lower(): v.strip('"').lower() for k, v in _PROPERTY.findall(rest)}
            results.append((method.lower(), result.lower(), properties))
    return (authserv.split() or [""])[0].lower(), results


def relay_pass(mail: EmailMessage, domain: str, authserv_id: str) -> bool:
    """The trusted relay's Authentication-Results header (its topmost one) says DMARC
    passed for the From domain, or DKIM passed for an aligned domain."""
    for header in mail.get_all("Authentication-Results") or []:
        authserv, results = _results(str(header))
        if authserv != authserv_id.lower():
            continue  # added by someone else: it proves nothing
        for method, result, properties in results:
            if result != "pass":
                continue
            if method == "dmarc" and properties.get("header.from", domain) == domain:
                return True
            if method == "dkim" and aligned(properties.get("header.d", ""), domain):
                return True
        return False
    return False


@dataclass(frozen=True)
class SenderCheck:
    """How this clinic authenticates inbound mail: its trusted relay's id (empty: none) and
    the DNS lookup DKIM keys are read with (tests serve their own keys)."""

    trusted_authserv_id: str = ""
    lookup: TxtLookup = field(default=get_txt)

    def __call__(self, raw: bytes, mail: EmailMessage) -> bool:
        domain = from_domain(mail)
        if domain is None:
            return False
        if self.trusted_authserv_id and relay_pass(mail, domain, self.trusted_authserv_id):
            return True
        return dkim_pass(raw, domain, self.lookup)
