"""The errors a provider's ``complete()`` raises, named by who must act.

Every failure is an :class:`LLMError` with a ``kind`` that tells the caller what to do:

========================  ==================================================================
kind                      meaning, and who acts
========================  ==================================================================
``model``                 The model answered, but not usably (not JSON, schema violation,
                          ``truncated``, ``refusal``, ``empty_output``). The model acts: the
                          one-line ``compact()`` goes into its context and counts toward
                          escalation. :class:`InvalidModelOutput` and its subclasses.
``transient``             Infrastructure (429, 5xx, timeouts, connection errors, garbled or
                          HTML replies, empty choices). Already retried inside the call for a
                          short window; nobody acts, the caller waits ``retry_after`` seconds
                          and calls again. Never the model's mistake.
``configuration``         An operator must act (401/403, unknown model, a 400 for a parameter
                          the server does not support, any other rejected request).
``internal``              A bug: an unexpected exception inside the provider, named by class.
========================  ==================================================================

``code`` is a stable machine name (``rate_limited``, ``truncated``, ...); ``compact()`` is
``"<code>: <message>"`` on one line. Each error also carries what the call cost and sent:
``tokens_in``/``tokens_out`` (billed usage summed over the attempts that reached the model,
counted with the offline tokenizer where the server reported none, then
``tokens_estimated`` is True), ``attempts``, ``messages_sent`` and, for transient errors,
``retry_after`` (seconds; the server's ``Retry-After`` when it sent one, else the next
backoff delay).
"""

from __future__ import annotations

MODEL = "model"
TRANSIENT = "transient"
CONFIGURATION = "configuration"
INTERNAL = "internal"
KINDS = (MODEL, TRANSIENT, CONFIGURATION, INTERNAL)

COMPACT_LIMIT = 300


def one_line(text: str, limit: int = COMPACT_LIMIT) -> str:
    """Collapse whitespace and cut to ``limit`` characters: errors go into prompts and logs."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class LLMError(Exception):
    """A provider call that did not produce a usable result."""

    kind = INTERNAL
    code = "llm_error"
    retryable = False  # whether calling again (after retry_after) can succeed

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None,
                 retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when there was one
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_estimated = False
        self.attempts = 0
        self.messages_sent: list[dict] | None = None

    def compact(self) -> str:
        return one_line(f"{self.code}: {self.message}")

    def as_dict(self) -> dict:
        """The error's fields as JSON data, e.g. for a step's output."""
        return {"kind": self.kind, "code": self.code, "message": one_line(self.message),
                "retry_after": self.retry_after, "status": self.status, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "tokens_estimated": self.tokens_estimated, "attempts": self.attempts}


# --- model: the model acts --------------------------------------------------------------

class InvalidModelOutput(LLMError):
    """The model answered, but not with JSON that fits the schema; asking again may help."""

    kind = MODEL
    code = "invalid_output"
    retryable = True

    def __init__(self, message: str, *, raw_text: str = "", **options: object) -> None:
        super().__init__(message, **options)  # type: ignore[arg-type]
        self.raw_text = raw_text


ModelError = InvalidModelOutput


class TruncatedOutput(InvalidModelOutput):
    """``finish_reason: length`` / ``stop_reason: max_tokens``, even after one larger try."""

    code = "truncated"


class ModelRefusal(InvalidModelOutput):
    code = "refusal"


class EmptyModelOutput(InvalidModelOutput):
    code = "empty_output"


# --- transient: wait and call again -----------------------------------------------------

class LLMTransientError(LLMError):
    kind = TRANSIENT
    code = "transient"
    retryable = True


class LLMRateLimited(LLMTransientError):
    code = "rate_limited"


class LLMTimeout(LLMTransientError):
    code = "timeout"


class LLMServerError(LLMTransientError):
    code = "server_error"


class LLMConnectionError(LLMTransientError):
    code = "connection_error"


class LLMBadResponse(LLMTransientError):
    """A reply that is not the API's shape: HTML, garbled JSON, no choices, no message."""

    code = "bad_response"


# --- configuration: an operator acts ------------------------------------------------------

class LLMConfigurationError(LLMError):
    kind = CONFIGURATION
    code = "configuration_error"


class LLMAuthError(LLMConfigurationError):
    code = "auth_error"


class LLMUnknownModel(LLMConfigurationError):
    code = "unknown_model"


class LLMUnsupportedParameter(LLMConfigurationError):
    code = "unsupported_parameter"


class LLMBadRequest(LLMConfigurationError):
    code = "bad_request"


# --- internal: a bug ----------------------------------------------------------------------

class LLMInternalError(LLMError):
    kind = INTERNAL
    code = "internal_error"

    @classmethod
    def wrap(cls, error: BaseException, provider: str) -> LLMInternalError:
        wrapped = cls(f"{provider}: {type(error).__name__}: {one_line(str(error), 200)}")
        wrapped.__cause__ = error
        return wrapped
