"""The one catalog of pt-BR text for people outside the Rasa domain: system messages to
patients, staff screens and API errors. The staff pages load the same file."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("catalog.pt-BR.json")


@lru_cache(maxsize=1)
def catalog() -> dict[str, str]:
    texts: dict[str, str] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return texts


def t(key: str, **values: Any) -> str:
    return catalog()[key].format(**values)
