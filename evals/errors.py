"""Errors of the evals app, in the API's one error shape (agentos.api.ApplicationError)."""

from __future__ import annotations

from agentos.api import ApplicationError


class EvalError(ApplicationError):
    code = "eval_invalid"
