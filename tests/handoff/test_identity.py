import pytest

from handoff.identity import (
    mask_cpf,
    normalize_cpf,
    normalize_email,
    normalize_phone,
    phone_match_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+55 11 98765-4321", "+5511987654321"),
        ("(11) 98765-4321", "+5511987654321"),
        ("5511987654321", "+5511987654321"),
        ("553187654321", "+5531987654321"),  # WhatsApp id without the ninth digit
        ("+55 11 3000-1000", "+551130001000"),  # landline keeps 8 digits
        ("+1 415 555 2671", "+14155552671"),
        ("12345", None),
        ("", None),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


def test_match_key_ignores_the_ninth_digit():
    assert phone_match_key("+5531987654321") == phone_match_key(normalize_phone("553187654321"))
    assert phone_match_key("+14155552671") is None


def test_normalize_email():
    assert normalize_email("  Maria.Silva@Gmail.COM ") == "maria.silva@gmail.com"
    assert normalize_email("not-an-email") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("529.982.247-25", "52998224725"),
        ("52998224725", "52998224725"),
        ("529.982.247-24", None),  # wrong second check digit
        ("529.982.247-15", None),  # wrong first check digit
        ("111.111.111-11", None),  # passes the checksum, never issued
        ("1234567890", None),
        ("", None),
    ],
)
def test_normalize_cpf(raw, expected):
    assert normalize_cpf(raw) == expected


def test_mask_cpf_shows_only_the_middle_digits():
    assert mask_cpf("52998224725") == "***.982.247-**"
