"""Logging an unexpected failure without its message.

An exception's message may quote personal data: a database error quotes the statement's
parameters (a message text, a CPF, a phone number), a validation error the value it refused.
LGPD keeps those out of logs, so a failure is logged with its type and its traceback's frames
(file, line and code, never values), which is enough to find the bug."""

from __future__ import annotations

import logging
import re
import traceback

# Eight or more digits, alone or split by single separators: a phone number, a CPF. Provider
# error texts echo them ("The 'To' number +5511... is not a valid phone number").
_LONG_NUMBER = re.compile(r"\+?\d(?:[\s.()/-]?\d){7,}")


def log_failure(logger: logging.Logger, exc: BaseException, what: str, *args: object) -> None:
    """Log `what % args` at ERROR with `exc`'s type and where it was raised."""
    logger.error(
        what + " (%s)\n%s",
        *args,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )


def without_numbers(text: str) -> str:
    """`text` (a provider's error, say) with phone numbers and CPFs masked, for a log line."""
    return _LONG_NUMBER.sub("[number removed]", text)
