"""The one error base: what the clinic refuses, said once.

A domain function raises a `ClinicError` subclass; its `code` is a key of the pt-BR text
catalogue (core/catalog.pt-BR.json) and its `status` the HTTP status the web answers with.
The web's error middleware is the one place that turns it into a response, with the text a
person reads (`t(code, **values)`); the bot's actions turn it into their own words.
"""

from __future__ import annotations

import math


class ClinicError(Exception):
    """Something the clinic refuses to do. Subclasses set `code` and `status`; an instance
    may carry another `code` and the values its text names."""

    code: str = "error.conflict"
    status: int = 409

    def __init__(self, code: str | None = None, **values: object) -> None:
        super().__init__(code or type(self).code)
        if code is not None:
            self.code = code  # an instance may name its own reason
        self.values = values


class BadRequest(ClinicError):
    code = "error.invalid_json"
    status = 400


class Unauthenticated(ClinicError):
    code = "error.unauthenticated"
    status = 401


class Forbidden(ClinicError):
    code = "error.forbidden"
    status = 403


class NotFound(ClinicError):
    code = "error.not_found"
    status = 404


class PayloadTooLarge(ClinicError):
    code = "files.error.too_large"
    status = 413


class Conflict(ClinicError):
    code = "error.conflict"
    status = 409


class TooManyRequests(ClinicError):
    """Too many attempts (429): the web answers with `Retry-After: <retry_after>` seconds."""

    code = "error.too_many_attempts"
    status = 429

    def __init__(self, retry_after: float, code: str | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(code, minutos=math.ceil(self.retry_after / 60))
