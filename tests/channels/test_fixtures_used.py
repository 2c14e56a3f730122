"""Every payload recorded from a provider's documentation is exercised by some test: one of
its channel's, or one of the tests every channel shares."""

from tests.channels.webhooks import ROOT


def test_every_recorded_fixture_is_used_by_a_test():
    shared = "".join(path.read_text() for path in ROOT.glob("test_*.py"))
    unused = []
    for fixture in sorted(ROOT.glob("*/fixtures/*")):
        channel = fixture.parent.parent
        tests = shared + "".join(path.read_text() for path in channel.glob("test_*.py"))
        if f'"{fixture.stem}"' not in tests:
            unused.append(f"{channel.name}/{fixture.name}")
    assert unused == []
