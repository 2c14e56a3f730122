"""Brazilian contact data as the clinic stores it: phones in E.164 (with the mobile ninth digit
matched either way), e-mails lower-cased, CPFs with their check digits; pure functions."""

from __future__ import annotations

import re

import phonenumbers

_BR_MOBILE_WITHOUT_NINTH = re.compile(r"^55(\d{2})([6-9]\d{7})$")


def normalize_phone(raw: str) -> str | None:
    """E.164 for a Brazilian or international phone, inserting the mobile ninth digit
    that old WhatsApp ids lack; None when it is not a phone number."""
    digits = re.sub(r"\D", "", raw or "")
    if not digits:
        return None
    if old := _BR_MOBILE_WITHOUT_NINTH.match(digits):
        digits = f"55{old.group(1)}9{old.group(2)}"
    candidate = f"+{digits}" if raw.strip().startswith("+") or digits.startswith("55") else digits
    try:
        number = phonenumbers.parse(candidate, "BR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_match_key(e164: str | None) -> str | None:
    """The key channel identities are matched on: 55 + DDD + last 8 digits for Brazilian
    numbers (so WhatsApp's 551198765432 matches +5511998765432), the bare digits otherwise.
    Only phones a provider proved get one: a typed phone must never attract someone else's
    chats."""
    if not e164:
        return None
    digits = e164[1:]
    return digits[:4] + digits[-8:] if e164.startswith("+55") else digits


def normalize_email(raw: str) -> str | None:
    email = (raw or "").strip().lower()
    return email if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) else None


def normalize_cpf(raw: str) -> str | None:
    """11 bare digits when the CPF's check digits are right; None otherwise. The eleven
    repeated-digit strings pass the checksum but are never issued, so they are refused."""
    digits = re.sub(r"\D", "", raw or "")
    if len(digits) != 11 or len(set(digits)) == 1:
        return None
    numbers = [int(d) for d in digits]
    for position in (9, 10):
        weights = range(position + 1, 1, -1)
        total = sum(n * w for n, w in zip(numbers[:position], weights, strict=True))
        check = (total * 10) % 11 % 10
        if numbers[position] != check:
            return None
    return digits


def mask_cpf(cpf: str | None) -> str | None:
    """How staff screens show a CPF: ***.982.247-**."""
    return f"***.{cpf[3:6]}.{cpf[6:9]}-**" if cpf else None
