import pytest

from handoff.identity import normalize_email, normalize_phone, phone_match_key


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
