"""AgentOS settings. Every value comes from the environment through agentos.config.

See README.md ("Configuration") and .env.example for the variables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from agentos import embedded
from agentos.config import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)
from mcp_bridge.conf import parse_stdio_commands

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or env_bool("AGENTOS_TESTING", False)

DEBUG = env_bool("DEBUG", False)
# Embedded mode: no DATABASE_URL, so everything runs on this machine on loopback (the
# README's run command). Production sets DATABASE_URL, REDIS_URL and SECRET_KEY.
EMBEDDED = not env_str("DATABASE_URL", "")
SECRET_KEY = env_str("SECRET_KEY", embedded.secret_key() if EMBEDDED or TESTING else None)
if not DEBUG and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] + (["testserver"] if TESTING else []))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Secure cookies whenever the site is not in DEBUG; behind TLS set SECURE_SSL_REDIRECT too.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not (DEBUG or TESTING or EMBEDDED))
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "agentos",
    "prompts",
    "tools",
    "memory",
    "tasks",
    "triggers",
    "evals",
    "mcp_bridge",
    "observability",
    "workspaces",
]

MIDDLEWARE = [
    # First: body limits (413 before anything reads a body) and JSON 404s under /api/.
    "agentos.middleware.EdgeMiddleware",
    # A span per request when tracing is on (OTEL_EXPORTER_OTLP_*); dropped otherwise.
    "observability.middleware.TracingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tasks.pages.csp.ContentSecurityPolicyMiddleware",  # policy and its exceptions: tasks/pages/csp.py
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "agentos.urls"
ASGI_APPLICATION = "agentos.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database: DATABASE_URL, or the embedded PostgreSQL with pgvector --------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "postgis", "pgsql")) or embedded.postgres_url()
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# A connection pool per process (psycopg_pool), shared by its threads. Django's connections
# are per thread, and daphne runs each request on a fresh thread and Celery's fixup closes
# the connection around every task, so without a pool nearly every request and task slice
# opens a new PostgreSQL session. A worker thread hands its connection back while it waits
# on the model (tasks/limits.py), so a 256-thread worker needs no more than its busy threads.
# Sizes per process: web, one worker per core and beat at 40 each stay far below
# PostgreSQL's max_connections (300 here). 0 turns pooling off; then DB_CONN_MAX_AGE keeps
# a thread's connection open that many seconds.
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 40, minimum=0, maximum=1000)
if DB_POOL_MAX_SIZE:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 2, minimum=0, maximum=DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        # How long a request waits for a free connection before failing.
        "timeout": env_float("DB_POOL_TIMEOUT", 10.0, minimum=0.1),
    }
# Django refuses persistent connections together with a pool: a closed connection goes back to it.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 0 if DB_POOL_MAX_SIZE else 60, minimum=0)
if DB_POOL_MAX_SIZE and DATABASES["default"]["CONN_MAX_AGE"]:
    raise ImproperlyConfigured("DB_CONN_MAX_AGE must be 0 with a connection pool (or set DB_POOL_MAX_SIZE=0)")
# Parallel test runs on one server each need their own test database.
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", f"test_{DATABASES['default']['NAME']}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: REDIS_URL, or the embedded Redis ---------------------------------------------
REDIS_URL = (env_url("REDIS_URL", ("redis", "rediss")) or embedded.redis_url()).rstrip("/")
# Separate logical databases keep the broker, the channel layer and the cache apart; the
# test suite moves all three so it never shares queues with a running development system.
_REDIS_DB_BASE = env_int("REDIS_DB_BASE", 10 if TESTING else 0, minimum=0, maximum=61)


def _redis_db(offset: int) -> str:
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
    return f"{base}/{_REDIS_DB_BASE + offset}"


CELERY_BROKER_URL = _redis_db(0)
CHANNEL_REDIS_URL = _redis_db(1)
CACHE_REDIS_URL = _redis_db(2)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [CHANNEL_REDIS_URL]},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_REDIS_URL}}

# --- Celery --------------------------------------------------------------------------
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-slice leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=10),
    # Message priorities 0 (first) to 9, each its own Redis list: fairness between owners
    # (tasks/fairness.py). Other jobs (beat's, evals', callbacks') keep priority 0.
    "priority_steps": list(range(10)),
    "queue_order_strategy": "priority",
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_POOL = env_choice("CELERY_WORKER_POOL", "threads", ("threads", "prefork", "solo", "gevent"))
# Threads per worker process (agentos/launcher.py starts CELERY_WORKER_PROCESSES of them,
# default one per core): a task's thread mostly waits on the model, holding no connection.
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 256, minimum=1, maximum=2000)
CELERY_WORKER_PROCESSES = env_int("CELERY_WORKER_PROCESSES", 0, minimum=0, maximum=256)  # 0: one per core
CELERY_TIMEZONE = "UTC"
# Each worker rewrites its /healthz heartbeat this often (it expires after three intervals).
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.2)
# Celery's Django fixup closes every database connection before and after each job unless
# this is set, so every task slice opened a new PostgreSQL session (about 5 ms). With it, a
# worker thread keeps its connection; agentos/celery.py applies Django's request rules
# around each job instead (close_old_connections: DB_CONN_MAX_AGE, and a connection that
# failed is dropped), and the fixup closes a thread's connection only every 2 x N jobs.
CELERY_DB_REUSE_MAX = 1000

# --- REST API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agentos.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "agentos.api.Pagination",
    # JSON only: any other body is a 415 in the one error shape (malformed multipart never reaches a parser).
    "DEFAULT_PARSER_CLASSES": ["agentos.parsers.JSONParser"],
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_RATE", "100000/hour" if TESTING else "3000/hour"),
        # POST /api/v1/auth/token checks passwords: a low rate per client address.
        "auth": env_str("API_AUTH_THROTTLE_RATE", "1000/minute" if TESTING else "20/minute"),
    },
}
# A JSON body larger than this is a 413 (the largest legitimate body, a memory entry, is ~80 KB).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_048_576, minimum=1024)
# POST /api/v1/execute waits this long for a result unless the request says otherwise.
EXECUTE_DEFAULT_TIMEOUT = env_float("EXECUTE_DEFAULT_TIMEOUT", 60.0, minimum=0.0)
EXECUTE_MAX_TIMEOUT = env_float("EXECUTE_MAX_TIMEOUT", 300.0, minimum=1.0)
# Stream tokens (POST /api/v1/tasks/{id}/stream-token) open that task's stream this long.
STREAM_TOKEN_SECONDS = env_int("STREAM_TOKEN_SECONDS", 300, minimum=10, maximum=86400)
# Server-Sent Events: a comment line this often keeps proxies from closing an idle stream.
SSE_HEARTBEAT_SECONDS = env_float("SSE_HEARTBEAT_SECONDS", 15.0, minimum=0.05)
# Open streams (SSE, websocket) re-check their caller this often, before the next event they
# send: a revoked API key, a deactivated user or a member removed from the task's workspace
# ends the stream (tasks/api/auth.py, stream_access_lost). 0: before every event.
LIVE_ACCESS_RECHECK_SECONDS = env_float("LIVE_ACCESS_RECHECK_SECONDS", 10.0, minimum=0.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "AgentOS API",
    "DESCRIPTION": "Durable LLM agents: tasks, steps, tools, prompts and memory.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"TaskStatusEnum": "tasks.models.TaskStatus", "StepStatusEnum": "tasks.models.StepStatus"},
}

# --- LLM -------------------------------------------------------------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY", "")
_DEFAULT_PROVIDER = "openai" if OPENAI_API_KEY else "anthropic" if ANTHROPIC_API_KEY else "offline"
LLM_PROVIDER = env_choice("LLM_PROVIDER", _DEFAULT_PROVIDER, ("offline", "openai", "anthropic"))
_DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "offline": "offline-rules"}
LLM_MODEL = env_str("LLM_MODEL", _DEFAULT_MODELS[LLM_PROVIDER])
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", ("http", "https"))
ANTHROPIC_BASE_URL = env_url("ANTHROPIC_BASE_URL", ("http", "https"))
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 60.0, minimum=0.1)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 3, minimum=0, maximum=10)
# Transient provider errors are retried inside one call while the next try starts within
# this window; after it the error goes to the runner with its retry_after.
LLM_RETRY_WINDOW_SECONDS = env_float("LLM_RETRY_WINDOW_SECONDS", 20.0, minimum=0.0)
# A provider outage that outlasts LLM_RETRY_WINDOW_SECONDS: the task waits (status
# waiting_provider) and tries again after LLM_OUTAGE_BACKOFF_SECONDS, doubling (with jitter,
# at least the server's Retry-After, at most 5 minutes), and fails once the outage has
# lasted LLM_OUTAGE_MAX_SECONDS.
LLM_OUTAGE_MAX_SECONDS = env_float("LLM_OUTAGE_MAX_SECONDS", 900.0, minimum=0.0)
LLM_OUTAGE_BACKOFF_SECONDS = env_float("LLM_OUTAGE_BACKOFF_SECONDS", 5.0, minimum=0.1)
OFFLINE_LLM_LATENCY_MS = env_int("OFFLINE_LLM_LATENCY_MS", 0, minimum=0, maximum=60000)
# Per-model limits shared by all workers (tasks/limits.py, counted in Redis): model calls in
# flight, requests and tokens (estimated prompt tokens at the start, the billed prompt and
# output tokens once the call returns) in the last minute; 0 = no limit. LLM_MODEL_LIMITS
# sets them per model ("gpt-4o=50/500/30000,gpt-4o-mini=200/0": in flight/requests per
# minute[/tokens per minute], tokens per minute defaulting to LLM_TOKENS_PER_MINUTE), the
# three others are the default for every other model. Rows of the admin's "Model limits"
# table override both, field by field; each process reads the table at most
# LLM_LIMITS_REFRESH_SECONDS late. A call waits up to LLM_CAPACITY_WAIT_SECONDS for
# capacity; then its task waits ("waiting for model capacity", status waiting_provider) and
# retries, without counting toward LLM_OUTAGE_MAX_SECONDS.
LLM_MAX_IN_FLIGHT = env_int("LLM_MAX_IN_FLIGHT", 0, minimum=0)
LLM_REQUESTS_PER_MINUTE = env_int("LLM_REQUESTS_PER_MINUTE", 0, minimum=0)
LLM_TOKENS_PER_MINUTE = env_int("LLM_TOKENS_PER_MINUTE", 0, minimum=0)
LLM_CAPACITY_WAIT_SECONDS = env_float("LLM_CAPACITY_WAIT_SECONDS", 10.0, minimum=0.0)
LLM_LIMITS_REFRESH_SECONDS = env_float("LLM_LIMITS_REFRESH_SECONDS", 5.0, minimum=0.0)


def _model_limits(items: list[str]) -> dict[str, tuple[int, int, int | None]]:
    limits = {}
    for item in items:
        model, _, spec = item.rpartition("=")
        parts = spec.split("/")
        try:
            if not model.strip() or not 1 <= len(parts) <= 3:
                raise ValueError
            values = [int(part) for part in parts]
        except ValueError:
            raise ImproperlyConfigured(f"LLM_MODEL_LIMITS: {item!r} is not "
                                       "model=in_flight/requests_per_minute[/tokens_per_minute]")
        if min(values) < 0:
            raise ImproperlyConfigured(f"LLM_MODEL_LIMITS: {item!r} has a negative limit")
        values += [0, None][len(values) - 1:]  # requests/min 0, tokens/min the default when left out
        limits[model.strip()] = tuple(values)
    return limits


LLM_MODEL_LIMITS = _model_limits(env_list("LLM_MODEL_LIMITS", []))
if LLM_PROVIDER == "openai" and not OPENAI_API_KEY:
    raise ImproperlyConfigured("LLM_PROVIDER=openai needs OPENAI_API_KEY (use any value for a local server)")
if LLM_PROVIDER == "anthropic" and not ANTHROPIC_API_KEY:
    raise ImproperlyConfigured("LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY")

# --- Orchestrator ----------------------------------------------------------------------
TASK_STEP_BUDGET = env_int("TASK_STEP_BUDGET", 60, minimum=5, maximum=1000)
# A worker's lease on a task; each live worker process renews its leases every second (its
# heartbeat, tasks/leases.py), so a short lease only matters when a process dies: its tasks
# continue on another worker about TASK_LEASE_SECONDS + TASK_REQUEUE_INTERVAL later.
TASK_LEASE_SECONDS = env_int("TASK_LEASE_SECONDS", 3, minimum=2, maximum=3600)
TASK_SLICE_SECONDS = env_float("TASK_SLICE_SECONDS", 5.0, minimum=0.1)
TASK_SLICE_STEPS = env_int("TASK_SLICE_STEPS", 20, minimum=1)
CONTEXT_TOKEN_BUDGET = env_int("CONTEXT_TOKEN_BUDGET", 6000, minimum=500)
QUERY_MAX_LENGTH = env_int("QUERY_MAX_LENGTH", 8000, minimum=10)
TASK_MAX_SUBTASKS = env_int("TASK_MAX_SUBTASKS", 5, minimum=1, maximum=10)
# Tools that need a person's approval before they run, on top of those flagged in the registry.
TOOLS_REQUIRING_APPROVAL = env_list("TOOLS_REQUIRING_APPROVAL", [])
# Pure tools (calculator, data_analysis) run in this many pre-started processes, each capped
# at TOOL_PROCESS_MEMORY_MB of address space and killed at the tool's timeout (docs/tools.md).
TOOL_PROCESS_POOL_SIZE = env_int("TOOL_PROCESS_POOL_SIZE", 2, minimum=1, maximum=64)
TOOL_PROCESS_MEMORY_MB = env_int("TOOL_PROCESS_MEMORY_MB", 256, minimum=64)
# Modules that register more tools (site-specific ones) when the registry loads.
TOOLS_EXTRA_MODULES = env_list("TOOLS_EXTRA_MODULES", [])
# Celery beat re-enqueues tasks whose worker's lease expired (a crash) every second, and
# queued tasks nobody picked up for TASK_REQUEUE_AFTER_SECONDS (a lost message; ten times as
# long while messages wait in the queue, tasks/leases.py).
TASK_REQUEUE_INTERVAL = env_float("TASK_REQUEUE_INTERVAL", 1.0, minimum=0.5)
TASK_REQUEUE_AFTER_SECONDS = env_int("TASK_REQUEUE_AFTER_SECONDS", 60, minimum=5)
CELERY_BEAT_SCHEDULE = {
    "tasks-requeue-expired-leases": {"task": "tasks.requeue_expired_leases", "schedule": TASK_REQUEUE_INTERVAL},
    # Webhook deliveries are remembered (replays refused) only while their timestamp is accepted.
    "triggers-prune-webhook-deliveries": {"task": "triggers.jobs.prune_webhook_deliveries", "schedule": 300.0},
    # A completed task's result is stored in memory right after its commit; this catches the
    # results of workers that stopped in between.
    "tasks-remember-results": {"task": "tasks.remember_results", "schedule": 60.0},
}

# --- Prompt rendering ------------------------------------------------------------------
# Bounds of one prompt rendering (prompts/sandbox.py), for bodies edited in the admin and
# webhook query templates alike: no value the template builds and not its text may be
# longer than PROMPT_RENDER_MAX_CHARS characters, all it builds together not ten times
# that; loop iterations and calls are capped at PROMPT_RENDER_MAX_STEPS and the rendering
# at PROMPT_RENDER_MAX_SECONDS. Going past one is a render error, not a frozen process.
PROMPT_RENDER_MAX_CHARS = env_int("PROMPT_RENDER_MAX_CHARS", 1_000_000, minimum=10_000)
PROMPT_RENDER_MAX_STEPS = env_int("PROMPT_RENDER_MAX_STEPS", 1_000_000, minimum=1000)
PROMPT_RENDER_MAX_SECONDS = env_float("PROMPT_RENDER_MAX_SECONDS", 2.0, minimum=0.1)

# --- Prompt rollouts and evals ---------------------------------------------------------
# A rollout's candidate is stopped automatically once it has this many uses and its failure
# rate exceeds the active version's by more than the margin (0.1 = 10 points); both are
# defaults, each rollout may set its own. Beat checks running rollouts every interval.
PROMPT_ROLLOUT_MIN_USES = env_int("PROMPT_ROLLOUT_MIN_USES", 50, minimum=1)
PROMPT_ROLLOUT_FAILURE_MARGIN = env_float("PROMPT_ROLLOUT_FAILURE_MARGIN", 0.1, minimum=0.0)
PROMPT_ROLLOUT_CHECK_INTERVAL = env_float("PROMPT_ROLLOUT_CHECK_INTERVAL", 60.0, minimum=1.0)
CELERY_BEAT_SCHEDULE["prompts-check-rollouts"] = {"task": "prompts.check_rollouts",
                                                  "schedule": PROMPT_ROLLOUT_CHECK_INTERVAL}
# Items of one eval run evaluated at the same time (Celery jobs per run).
EVAL_CONCURRENCY = env_int("EVAL_CONCURRENCY", 4, minimum=1, maximum=64)
# regex and json_schema checks run in this many check processes per worker process, each
# killed when a check has not answered within the timeout (the check is then an error).
EVAL_CHECK_TIMEOUT_SECONDS = env_float("EVAL_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1)
EVAL_CHECK_PROCESS_POOL_SIZE = env_int("EVAL_CHECK_PROCESS_POOL_SIZE", 2, minimum=1, maximum=64)

# --- Memory ----------------------------------------------------------------------------
MEMORY_EMBEDDER = env_choice("MEMORY_EMBEDDER", "hashing", ("hashing", "sentence-transformers", "openai"))
MEMORY_DIMENSIONS = env_int("MEMORY_DIMENSIONS", 384, minimum=8, maximum=2000)
# "hybrid" fuses the vector ranking with PostgreSQL full-text search (reciprocal rank
# fusion); chosen as the default because it measured better on bench/memory_search.py.
MEMORY_SEARCH_MODE = env_choice("MEMORY_SEARCH_MODE", "hybrid", ("vector", "hybrid"))
# HNSW candidate list per query (hnsw.ef_search), per mode; 0 (the default) sizes it to the
# table: 200 at 100,000 entries, 400 at 1,000,000 (memory.services.auto_ef_search). Recall
# at a given depth varies between builds of the same index; on the measured curves
# (bench/memory_search.py, docs/memory.md) 200 reached recall@10 >= 0.95 in every build at
# 100,000 entries and 400 in three of four at a million.
MEMORY_HNSW_EF_SEARCH = env_int("MEMORY_HNSW_EF_SEARCH", 0, minimum=0, maximum=1000)
MEMORY_HNSW_EF_SEARCH_HYBRID = env_int("MEMORY_HNSW_EF_SEARCH_HYBRID", 0, minimum=0, maximum=1000)
# Filtered searches (an owner's entries among many users') keep walking the graph until
# enough rows pass the filter (pgvector's hnsw.iterative_scan); "off" stops at ef_search.
MEMORY_HNSW_ITERATIVE_SCAN = env_choice("MEMORY_HNSW_ITERATIVE_SCAN", "relaxed_order",
                                        ("off", "relaxed_order", "strict_order"))
# Hybrid search ranks at most this many full-text matches (0, the default: all of them).
# ts_rank reads each match's tsvector, so a broad query at a million entries ranks tens
# of thousands; a limit bounds that time but costs recall (docs/memory.md has the curve).
MEMORY_FTS_RANK_LIMIT = env_int("MEMORY_FTS_RANK_LIMIT", 0, minimum=0, maximum=10**9)
# HNSW index builds (memory_import, memory_reembed, memory_build_index): maintenance_work_mem
# is sized to hold the whole graph (docs/memory.md), up to this cap; parallel workers besides
# the leader process (2, PostgreSQL's own default: as fast as 1 on 2 cores, faster with more).
MEMORY_INDEX_BUILD_MAX_MEMORY_MB = env_int("MEMORY_INDEX_BUILD_MAX_MEMORY_MB", 4096, minimum=64)
MEMORY_INDEX_BUILD_WORKERS = env_int("MEMORY_INDEX_BUILD_WORKERS", 2, minimum=0, maximum=64)
# An import of at least this many chunks drops the HNSW index, loads with COPY and builds
# the index once at the end instead of inserting row by row into it.
MEMORY_IMPORT_BULK_MIN = env_int("MEMORY_IMPORT_BULK_MIN", 20_000, minimum=1)
OPENAI_EMBEDDINGS_MODEL = env_str("OPENAI_EMBEDDINGS_MODEL", "text-embedding-3-small")

# --- Tools -----------------------------------------------------------------------------
HTTP_GET_ALLOWED_HOSTS = env_list("HTTP_GET_ALLOWED_HOSTS", [])
HTTP_ALLOW_PRIVATE_ADDRESSES = env_bool("HTTP_ALLOW_PRIVATE_ADDRESSES", False)
HTTP_GET_MAX_BYTES = env_int("HTTP_GET_MAX_BYTES", 1_000_000, minimum=1024)
HTTP_GET_TIMEOUT = env_float("HTTP_GET_TIMEOUT", 10.0, minimum=0.1)
# A search service answering GET ?q=&k= with {"results": [...]}; unset = the local knowledge base.
WEB_SEARCH_URL = env_url("WEB_SEARCH_URL", ("http", "https"))

# --- MCP (docs/mcp.md) ------------------------------------------------------------------
# Client: stdio servers an administrator may register, by key: a JSON object of
# name -> command line (a list), or name -> {"command": [...], "env": {"VAR": "${NAME}"}}.
MCP_STDIO_COMMANDS = parse_stdio_commands("MCP_STDIO_COMMANDS", env_str("MCP_STDIO_COMMANDS", ""))
# Registered HTTP servers must resolve to public addresses unless this is on (as for http_get).
MCP_ALLOW_PRIVATE_ADDRESSES = env_bool("MCP_ALLOW_PRIVATE_ADDRESSES", False)
# Celery beat lists the tools of every enabled MCP server this often (seconds).
MCP_REFRESH_INTERVAL = env_float("MCP_REFRESH_INTERVAL", 3600.0, minimum=10.0)
CELERY_BEAT_SCHEDULE["mcp-refresh-tool-lists"] = {"task": "mcp_bridge.refresh_tool_lists",
                                                  "schedule": MCP_REFRESH_INTERVAL}
# Server: /mcp serves the enabled tools, run_task and get_task (token authentication).
MCP_SERVER_ENABLED = env_bool("MCP_SERVER_ENABLED", True)
# The longest run_task waits for its task (seconds) before answering with it still running.
MCP_RUN_TASK_MAX_WAIT = env_float("MCP_RUN_TASK_MAX_WAIT", 600.0, minimum=0.0)

# --- Triggers: inbound webhooks, outbound callbacks ---------------------------------------
WEBHOOK_RATE_LIMIT = env_int("WEBHOOK_RATE_LIMIT", 60, minimum=1)  # accepted deliveries a minute, per webhook
WEBHOOK_SIGNATURE_TOLERANCE = env_int("WEBHOOK_SIGNATURE_TOLERANCE", 300, minimum=10, maximum=3600)
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 262_144, minimum=1024)
# Signs callbacks of tasks not started by a webhook; empty = each owner's own callback secret.
CALLBACK_SIGNING_SECRET = env_str("CALLBACK_SIGNING_SECRET", "")
# Callbacks obey the http_get tool's SSRF rules (HTTP_ALLOW_PRIVATE_ADDRESSES included).
CALLBACK_ALLOWED_HOSTS = env_list("CALLBACK_ALLOWED_HOSTS", HTTP_GET_ALLOWED_HOSTS)
CALLBACK_MAX_ATTEMPTS = env_int("CALLBACK_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
CALLBACK_RETRY_BASE_SECONDS = env_float("CALLBACK_RETRY_BASE_SECONDS", 10.0, minimum=0.0)
CALLBACK_RETRY_MAX_SECONDS = env_float("CALLBACK_RETRY_MAX_SECONDS", 3600.0, minimum=0.0)
CALLBACK_TIMEOUT = env_float("CALLBACK_TIMEOUT", 10.0, minimum=0.1)

# --- Internationalisation and static files --------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# text: one line per record, with " task=<id> step=<n> worker=<id>" during a task's work;
# json: one JSON object per line with those as keys (observability/logs.py).
# /metrics (Prometheus text format) answers a bearer token equal to this; empty: /metrics is off.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Count steps, tokens, cost, latency and tool errors in Redis (one pipelined call per step).
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)

LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(task_context)s: %(message)s"},
        "json": {"()": "observability.logs.JsonFormatter"},
    },
    "filters": {
        # Query-string tokens never reach a log line (access logs, Django's request errors).
        "redact_tokens": {"()": "agentos.logfilters.RedactTokensFilter"},
        # The task, step and worker of the work under way, on every line.
        "task_context": {"()": "agentos.logfilters.TaskContextFilter"},
        # Celery's lines about the lease check beat runs every second, unless it took tasks over.
        "routine_jobs": {"()": "agentos.logfilters.RoutineJobsFilter"},
        # An outage of PostgreSQL or Redis: one warning line per request, not a traceback.
        "outage": {"()": "agentos.middleware.OutageLogFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain",
                             "filters": ["routine_jobs", "redact_tokens", "task_context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["outage"]},
    },
}
