"""The embedded default under a burst: `make run`'s defaults (SQLite, one process of each kind)
and 50 new patients writing on WhatsApp at once from 16 clients.

    .venv/bin/python bench/burst.py [--patients 50] [--clients 16]

Starts the whole clinic from the Procfile (as `make run` does) on a throwaway SQLite database
and free ports, WhatsApp Cloud pointed at a local fake Graph API. Each patient sends "oi" and,
as soon as it is acknowledged, a question (tests/burst.py). Prints `name: value` lines:
`burst_acks_per_s` (webhooks acknowledged per second over the burst), `refused` (answered
other than 200), `answered` (patients who got both answers), `answered_in_order` (the
greeting's answer first), `db_errors` (lines of the clinic's log where the database failed).

Goal: every patient answered in order, no refusal, no database error. The log (clinic.log)
stays in the temporary folder named on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.turns import whatsapp_env  # noqa: E402
from tests.burst import burst  # noqa: E402
from tests.channels.fake_provider import FakeProvider  # noqa: E402
from tests.clinic import RunningClinic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    print(f"logs in {folder}", file=sys.stderr)
    provider = FakeProvider()
    provider.start()
    clinic = None
    try:
        clinic = RunningClinic.prepare(
            folder, f"sqlite:///{folder / 'clinic.db'}", whatsapp_env(provider)
        )
        clinic.start()
        result = asyncio.run(
            burst(
                clinic.settings.web_url,
                provider,
                clinic.log_path,
                patients=args.patients,
                clients=args.clients,
            )
        )
    finally:
        if clinic is not None:
            clinic.stop()
        provider.stop()
    print(f"burst_acks_per_s: {result.acks_per_s:.1f}")
    print(f"refused: {result.refused}")
    print(f"answered: {result.answered}/{result.patients}")
    print(f"answered_in_order: {result.answered_in_order}/{result.patients}")
    print(f"db_errors: {result.db_errors}")


if __name__ == "__main__":
    main()
