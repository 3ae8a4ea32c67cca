"""What a task's model call holds while it waits: no database connection, one unit of the model's capacity.

``model_slot(model, request)`` wraps every model call (observability.hooks.model_call):

- With a connection pool (DB_POOL_MAX_SIZE), the calling thread's PostgreSQL connection goes
  back to the pool for the call's duration once the pool runs short (less than a quarter
  of it free; the next query takes one again), so a worker process can have hundreds of
  calls waiting on the model with a few dozen connections. Not inside a transaction:
  there the connection must stay.
- Per-model limits shared by every worker on every host, kept in Redis: calls in flight,
  requests in the last minute and tokens in the last minute (LLM_MAX_IN_FLIGHT,
  LLM_REQUESTS_PER_MINUTE, LLM_TOKENS_PER_MINUTE, per model LLM_MODEL_LIMITS; rows of the
  admin's "Model limits" table override them, read by each process at most
  LLM_LIMITS_REFRESH_SECONDS late, so an edit takes effect on running workers without a
  restart). A call takes a slot (in flight), a request of the last minute and its
  estimated prompt tokens (counted with the offline tokenizer), or waits for them up to
  LLM_CAPACITY_WAIT_SECONDS; past that it raises :class:`ModelCapacity`, a transient
  provider error, so the task waits (status ``waiting_provider``, "waiting for model
  capacity"; tasks/outage.py does not count it as an outage) and its worker thread is
  free. Once the call returns, :meth:`Slot.settle` replaces the estimate with the tokens
  the provider billed (prompt and output); a failed call keeps its estimate. A slot of a
  process that died expires after the longest a call can take (LLM_TIMEOUT x attempts).

The minute is sliding: requests are a sorted set of start times; tokens are a hash of
per-second sums, so a check reads at most 60 fields whatever the traffic.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from agentos.llm.errors import LLMTransientError

logger = logging.getLogger(__name__)
_PREFIX = "agentos:model-limits:"
_client = None

# KEYS: the in-flight set, the request log, the tokens per second. ARGV: token, max in flight,
# requests/minute, hold seconds, tokens/minute, tokens this call needs.
# Returns {"0", second} when a slot was taken (the second its tokens were counted in), else
# {seconds to wait before trying again}. Nothing is recorded unless every limit has room.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local second = math.floor(now)
local max_in_flight, per_minute, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens_per_minute, need = tonumber(ARGV[5]), tonumber(ARGV[6])
if max_in_flight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max_in_flight then return {'0.05'} end
end
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
  if redis.call('ZCARD', KEYS[2]) >= per_minute then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {tostring(math.max(0.05, tonumber(oldest[2]) + 60 - now))}
  end
end
if tokens_per_minute > 0 then
  local fields = redis.call('HGETALL', KEYS[3])
  local used, seconds = 0, {}
  for i = 1, #fields, 2 do
    local at, count = tonumber(fields[i]), tonumber(fields[i + 1])
    if at <= second - 60 then
      redis.call('HDEL', KEYS[3], fields[i])
    else
      used = used + count
      table.insert(seconds, {at, count})
    end
  end
  -- A call larger than the whole minute's budget runs once the minute is empty.
  if used > 0 and used + need > tokens_per_minute then
    table.sort(seconds, function(a, b) return a[1] < b[1] end)
    local excess, wait = used + need - tokens_per_minute, 0.05
    for _, entry in ipairs(seconds) do
      wait = math.max(0.05, entry[1] + 60 - now)
      excess = excess - entry[2]
      if excess <= 0 then break end
    end
    return {tostring(wait)}
  end
  redis.call('HINCRBY', KEYS[3], second, need)
  redis.call('EXPIRE', KEYS[3], 61)
end
if per_minute > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('EXPIRE', KEYS[2], 61)
end
if max_in_flight > 0 then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(hold) + 1)
end
return {'0', tostring(second)}
"""

# KEYS: the tokens per second. ARGV: the second the call was counted in, the correction.
# A second that has left the minute is not brought back.
_SETTLE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class ModelCapacity(LLMTransientError):
    """No capacity for the model within LLM_CAPACITY_WAIT_SECONDS: the task waits and tries again."""

    code = "model_capacity"


@dataclass(frozen=True)
class Limit:
    max_in_flight: int = 0
    requests_per_minute: int = 0
    tokens_per_minute: int = 0

    @property
    def active(self) -> bool:
        return self.max_in_flight > 0 or self.requests_per_minute > 0 or self.tokens_per_minute > 0

    def describe(self) -> str:
        return (f"at most {self.max_in_flight or '-'} in flight, {self.requests_per_minute or '-'} requests/min, "
                f"{self.tokens_per_minute or '-'} tokens/min")


FIELDS = ("max_in_flight", "requests_per_minute", "tokens_per_minute")


class LimitTable:
    """The admin's per-model limits (observability.ModelLimit) as this process last read them:
    reloaded when older than LLM_LIMITS_REFRESH_SECONDS or after :meth:`invalidate` (a row
    saved in this process). Once a copy exists, no call waits for a reload: one thread
    reloads, the others use the previous copy meanwhile."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[int | None, ...]] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._rows = None

    def rows(self) -> dict[str, tuple[int | None, ...]]:
        rows = self._rows
        stale = rows is None or time.monotonic() - self._loaded > settings.LLM_LIMITS_REFRESH_SECONDS
        if stale and self._lock.acquire(blocking=rows is None):
            try:
                if self._rows is rows:  # nobody reloaded while this thread waited for the lock
                    self._rows = self._load(rows)
                    self._loaded = time.monotonic()
                rows = self._rows
            finally:
                self._lock.release()
        return rows or {}

    @staticmethod
    def _load(previous: dict | None) -> dict[str, tuple[int | None, ...]]:
        from observability.models import ModelLimit

        try:
            return {model: tuple(values) for model, *values in ModelLimit.objects.values_list("model", *FIELDS)}
        except DatabaseError:  # keep what we had; the settings still apply
            logger.warning("could not read the model limits table; trying again later", exc_info=True)
            return previous or {}


table = LimitTable()


def limit_for(model: str) -> Limit:
    """The model's limits: its row in the admin's table, field by field (an empty field takes
    the setting); else its LLM_MODEL_LIMITS entry; else the defaults for every model."""
    defaults = (settings.LLM_MAX_IN_FLIGHT, settings.LLM_REQUESTS_PER_MINUTE, settings.LLM_TOKENS_PER_MINUTE)
    own = settings.LLM_MODEL_LIMITS.get(model)
    if own is not None:  # (in flight, requests/min[, tokens/min]); no tokens/min: the default
        defaults = _overlay((*own, None, None)[:3], defaults)
    row = table.rows().get(model)
    return Limit(*(_overlay(row, defaults) if row is not None else defaults))


def _overlay(values: tuple, defaults: tuple) -> tuple:
    return tuple(default if value is None else value for value, default in zip(values, defaults, strict=True))


# A thread keeps its connection through a model call while at least this share of the
# pool is still free (idle or not yet opened): a lightly loaded worker then skips a return
# and a checked loan per call; once connections run short, they go back for the call.
POOL_SPARE_SHARE = 0.25


def hand_back_connection() -> None:
    """Return this thread's pooled connection to the pool while the model call runs, when the
    pool runs short (nothing without a pool, in a transaction, or with connections to spare)."""
    if connection.connection is None or connection.in_atomic_block or connection.pool is None:
        return
    stats = connection.pool.get_stats()  # psycopg_pool's documented measures
    spare = stats.get("pool_max", 0) - stats.get("pool_size", 0) + stats.get("pool_available", 0)
    if spare - stats.get("requests_waiting", 0) < POOL_SPARE_SHARE * stats.get("pool_max", 0):
        connection.close()


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.CACHE_REDIS_URL, socket_timeout=5.0)
    return _client


def _keys(model: str) -> list[str]:
    return [f"{_PREFIX}{model}:in-flight", f"{_PREFIX}{model}:requests", f"{_PREFIX}{model}:tokens"]


def _hold_seconds() -> float:
    return settings.LLM_TIMEOUT * (settings.LLM_MAX_RETRIES + 1) + settings.LLM_RETRY_WINDOW_SECONDS + 5


@dataclass(frozen=True)
class Taken:
    wait: float  # 0.0: taken; else seconds to wait before asking again
    second: int | None = None  # the (Redis clock) second the call's tokens were counted in


def take(model: str, limit: Limit, token: str, tokens: int = 0) -> Taken:
    """Take a slot for ``token`` and ``tokens`` of the minute's tokens, or learn how long to wait."""
    reply = _redis().eval(_TAKE, 3, *_keys(model), token, limit.max_in_flight, limit.requests_per_minute,
                          _hold_seconds(), limit.tokens_per_minute, tokens)
    wait = float(reply[0])
    return Taken(wait, int(reply[1]) if wait == 0 and len(reply) > 1 else None)


def give_back(model: str, token: str) -> None:
    _redis().zrem(_keys(model)[0], token)


def in_flight(model: str) -> int:
    """Calls of ``model`` in flight now, over all workers (expired slots not counted)."""
    return _redis().zcount(_keys(model)[0], time.time(), "+inf")


def tokens_in_minute(model: str) -> int:
    """Tokens of ``model`` counted in the last minute, over all workers."""
    client = _redis()
    now = int(client.time()[0])
    return sum(int(count) for at, count in client.hgetall(_keys(model)[2]).items() if int(at) > now - 60)


def estimate_tokens(request) -> int:
    """The prompt tokens of a request, before the call: the offline tokenizer over every
    message, plus the few tokens each message's framing costs."""
    from prompts.tokens import count_tokens

    messages = getattr(request, "messages", None) or []
    return sum(count_tokens(str(message.get("content") or "")) + 4 for message in messages)


class Slot:
    """The capacity one call holds; :meth:`settle` corrects its tokens with the billed usage."""

    def __init__(self, model: str, limit: Limit, tokens: int = 0, second: int | None = None) -> None:
        self.model, self.limit, self.tokens, self.second = model, limit, tokens, second

    def settle(self, billed: int) -> None:
        """The provider billed ``billed`` tokens (prompt and output) for the call."""
        if not self.limit.tokens_per_minute or self.second is None or billed == self.tokens:
            return
        from redis.exceptions import RedisError

        try:
            _redis().eval(_SETTLE, 1, _keys(self.model)[2], self.second, int(billed) - self.tokens)
        except RedisError:  # the call succeeded and was billed: its result must not be lost to the count
            logger.warning("could not correct the token count of a %s call", self.model, exc_info=True)
            return
        self.tokens = int(billed)


@contextmanager
def model_slot(model: str, request=None):
    """Around one model call: no database connection held, the model's limits respected.
    Yields a :class:`Slot`; call its ``settle`` with the billed tokens once the call returns."""
    limit = limit_for(model)  # may read the limits table: before the connection goes back
    hand_back_connection()
    if not limit.active:
        yield Slot(model, limit)
        return
    token = uuid.uuid4().hex
    tokens = estimate_tokens(request) if limit.tokens_per_minute and request is not None else 0
    deadline = time.monotonic() + settings.LLM_CAPACITY_WAIT_SECONDS
    while (taken := take(model, limit, token, tokens)).wait > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ModelCapacity(f"waiting for model capacity ({model}: {limit.describe()})",
                                retry_after=max(1.0, min(taken.wait, 60.0)))
        # Jitter: hundreds of waiting calls do not ask again in step.
        time.sleep(min(left, taken.wait * random.uniform(1.0, 2.0), 1.0))
    try:
        yield Slot(model, limit, tokens, taken.second)
    finally:
        if limit.max_in_flight:
            give_back(model, token)
