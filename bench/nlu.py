"""Held-out NLU benchmark: train on the training split (bot/data/nlu.yml) only, then classify
every example of the held-out split (tests/bot/heldout_nlu.yml), which is never trained on.

    .venv/bin/python bench/nlu.py                  # train a fresh NLU model, then evaluate
    .venv/bin/python bench/nlu.py --model X.tar.gz # evaluate an existing model

Prints per-intent precision/recall/F1 (FAQ examples scored on their full key, e.g.
faq/horario; a low-confidence nlu_fallback counts as a miss) and, last,
`heldout_accuracy: 0.NNN` (the whole split) and `heldout_whatsapp_accuracy: 0.NNN` (its
WhatsApp-style section, tests/bot/heldout_whatsapp_nlu.yml). Rasa (training, parsing) runs
in the assistant's environment, .venv-rasa; this script only scores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bot.nlu_eval import (  # noqa: E402
    RASA_ENV,
    evaluate,
    heldout_examples,
    heldout_whatsapp_examples,
)


def train(out: Path, config: Path) -> Path:
    started = time.monotonic()
    subprocess.run(
        [
            str(ROOT / ".venv-rasa" / "bin" / "rasa"),
            "train",
            "nlu",
            "--nlu",
            str(ROOT / "bot" / "data" / "nlu.yml"),
            "--domain",
            str(ROOT / "domain.yml"),
            "--config",
            str(config),
            "--out",
            str(out),
            "--fixed-model-name",
            "nlu",
        ],
        cwd=ROOT,
        env=RASA_ENV,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"trained NLU on the training split in {time.monotonic() - started:.0f} s")
    return out / "nlu.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="evaluate this model instead of training")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or train(Path(folder), args.config)
        result = evaluate(model, heldout_examples())
    print(f"{'intent':<28}{'precision':>10}{'recall':>10}{'f1':>8}{'support':>9}")
    for intent, scores in sorted(result.per_intent.items()):
        print(
            f"{intent:<28}{scores.precision:>10.3f}{scores.recall:>10.3f}"
            f"{scores.f1:>8.3f}{scores.support:>9}"
        )
    print("\nmisclassified:")
    for text, expected, predicted in result.errors:
        print(f"  {text!r}: expected {expected}, got {predicted}")
    whatsapp = {text for text, _ in heldout_whatsapp_examples()}
    whatsapp_misses = sum(1 for text, _, _ in result.errors if text in whatsapp)
    print(f"\nheldout_examples: {result.total}")
    print(f"heldout_accuracy: {result.accuracy:.3f}")
    print(f"heldout_whatsapp_examples: {len(whatsapp)}")
    print(f"heldout_whatsapp_accuracy: {(len(whatsapp) - whatsapp_misses) / len(whatsapp):.3f}")


if __name__ == "__main__":
    main()
