"""What a task's model call holds while it waits: no database connection, one unit of the model's capacity.

``model_slot(model)`` wraps every model call (observability.hooks.model_call):

- With a connection pool (DB_POOL_MAX_SIZE), the calling thread's PostgreSQL connection goes
  back to the pool for the call's duration (the next query takes one again), so a worker
  process can have hundreds of calls waiting on the model with a few dozen connections.
  Not inside a transaction: there the connection must stay.
- Per-model limits shared by every worker on every host (LLM_MAX_IN_FLIGHT,
  LLM_REQUESTS_PER_MINUTE, per model LLM_MODEL_LIMITS), kept in Redis: a call takes a slot
  (in flight) and a request of the last minute, or waits for them up to
  LLM_CAPACITY_WAIT_SECONDS; past that it raises :class:`ModelCapacity`, a transient
  provider error, so the task waits (status ``waiting_provider``, "waiting for model
  capacity") and its worker thread is free. A slot of a process that died expires after
  the longest a call can take (LLM_TIMEOUT x attempts).
"""

from __future__ import annotations

import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from agentos.llm.errors import LLMTransientError

_PREFIX = "agentos:model-limits:"
_client = None

# KEYS: the in-flight set, the request log. ARGV: token, max in flight, requests/minute, hold seconds.
# Returns 0 when a slot was taken, else the seconds to wait before trying again.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local max_in_flight, per_minute, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if max_in_flight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max_in_flight then return '0.05' end
end
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
  if redis.call('ZCARD', KEYS[2]) >= per_minute then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return tostring(math.max(0.05, tonumber(oldest[2]) + 60 - now))
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('EXPIRE', KEYS[2], 61)
end
if max_in_flight > 0 then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(hold) + 1)
end
return '0'
"""


class ModelCapacity(LLMTransientError):
    """No capacity for the model within LLM_CAPACITY_WAIT_SECONDS: the task waits and tries again."""

    code = "model_capacity"


@dataclass(frozen=True)
class Limit:
    max_in_flight: int = 0
    requests_per_minute: int = 0

    @property
    def active(self) -> bool:
        return self.max_in_flight > 0 or self.requests_per_minute > 0


def limit_for(model: str) -> Limit:
    """The model's own entry in LLM_MODEL_LIMITS, else the defaults for every model."""
    own = settings.LLM_MODEL_LIMITS.get(model)
    if own is not None:
        return Limit(*own)
    return Limit(settings.LLM_MAX_IN_FLIGHT, settings.LLM_REQUESTS_PER_MINUTE)


def hand_back_connection() -> None:
    """Return this thread's pooled connection to the pool (nothing without a pool or in a transaction)."""
    if connection.connection is not None and not connection.in_atomic_block and connection.pool is not None:
        connection.close()


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.CACHE_REDIS_URL, socket_timeout=5.0)
    return _client


def _keys(model: str) -> list[str]:
    return [f"{_PREFIX}{model}:in-flight", f"{_PREFIX}{model}:requests"]


def _hold_seconds() -> float:
    return settings.LLM_TIMEOUT * (settings.LLM_MAX_RETRIES + 1) + settings.LLM_RETRY_WINDOW_SECONDS + 5


def take(model: str, limit: Limit, token: str) -> float:
    """Take a slot for ``token``: 0.0 when taken, else how long to wait before asking again."""
    waited = _redis().eval(_TAKE, 2, *_keys(model), token, limit.max_in_flight, limit.requests_per_minute,
                           _hold_seconds())
    return float(waited)


def give_back(model: str, token: str) -> None:
    _redis().zrem(_keys(model)[0], token)


def in_flight(model: str) -> int:
    """Calls of ``model`` in flight now, over all workers (expired slots not counted)."""
    return _redis().zcount(_keys(model)[0], time.time(), "+inf")


@contextmanager
def model_slot(model: str):
    """Around one model call: no database connection held, the model's limits respected."""
    hand_back_connection()
    limit = limit_for(model)
    if not limit.active:
        yield
        return
    token = uuid.uuid4().hex
    deadline = time.monotonic() + settings.LLM_CAPACITY_WAIT_SECONDS
    while (wait := take(model, limit, token)) > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ModelCapacity(f"waiting for model capacity ({model}: at most {limit.max_in_flight or '-'} in "
                                f"flight, {limit.requests_per_minute or '-'} requests/min)",
                                retry_after=max(1.0, min(wait, 60.0)))
        # Jitter: hundreds of waiting calls do not ask again in step.
        time.sleep(min(left, wait * random.uniform(1.0, 2.0), 1.0))
    try:
        yield
    finally:
        if limit.max_in_flight:
            give_back(model, token)
