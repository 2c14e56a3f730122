"""The staff screens label what the assistant sends them."""

import importlib
import re
from pathlib import Path

import bot.actions
from core.catalog import catalog

# hand_off(dispatcher, tracker, "reason") or hand_off(dispatcher, tracker, REASON_CONSTANT)
_HAND_OFF = re.compile(r'hand_off\(\s*dispatcher,\s*tracker,\s*(?:"(\w+)"|([A-Z_]+))')


def _handoff_reasons() -> set[str]:
    reasons = set()
    for path in Path(bot.actions.__file__).parent.glob("*.py"):
        module = importlib.import_module(f"bot.actions.{path.stem}")
        for literal, constant in _HAND_OFF.findall(path.read_text(encoding="utf-8")):
            reasons.add(literal or getattr(module, constant))
    return reasons


def test_every_handoff_reason_of_the_assistant_has_a_portuguese_label():
    reasons = _handoff_reasons()

    assert "pedido_do_paciente" in reasons  # the scan finds the calls
    assert sorted(r for r in reasons if f"reason.{r}" not in catalog()) == []
