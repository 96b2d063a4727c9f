"""The upstream key pool: rotation, cooldowns, breakers, probes, concurrency caps and shared state.
It imports nothing of llmitm's config: `llmitm.provider_pools` builds PoolSettings from the YAML.

    store = open_store("sqlite:///path/state.db")              # memory | sqlite:///path | redis://host:port/db
    pool = KeyPool.from_settings("openai", PoolSettings(keys=(KeySpec("k1", "sk-…"),)), store=store)
    lease = await pool.acquire(pin=None, exclude=tried)        # raises PoolExhausted(retry_after, reason)
    ...upstream call with lease.secret...
    lease.release(status, headers, body_json=..., error=..., input_tokens=..., output_tokens=...)
    lease.release(status, error=..., aborted=True)             # the app disconnected mid-answer

release() exactly once per lease (or `async with lease:`, which frees the slot without judging the key).
What a release does to the key, by outcome (outcome.classify; the effects are the table in transitions.py):
  2xx/3xx, and 4xx other than 401/402/403/429     success: resets the breaker's failure count
  429, rate_limit_error, RESOURCE_EXHAUSTED        cool down: Retry-After / retry-after-ms / Gemini retryDelay,
  529, 503, overloaded_error                       else a spent bucket's reset, else cooldown.default_seconds;
                                                   capped at cooldown.max_seconds
  insufficient_quota (OpenAI billing)              cool down for cooldown.max_seconds
  401, 402, 403                                    disable; keys_due_for_probe()/probe_result() re-enable
  other 5xx, or error= (connection failure)        failure: failure_threshold in a row open the breaker for
                                                   breaker_seconds, then one trial request (half-open)
  aborted=True (the app went away mid-answer)      aborted: counts the request and its tokens, never
                                                   against the key (no failure, no breaker, no cooldown);
                                                   an upstream 429/401/5xx before the abort still counts
  status=None and error=None                       abandoned: frees the slot only
Rate-limit headers of any response update the key's remaining quota (header families: ratelimits.py);
a spent bucket blocks the key until its reset.

Background tasks (the state writer, the Redis heartbeat) end on close() and on cancellation; see tasks.py
for why every wait here uses asyncio.timeout and re-raises a cancellation a library lost.
"""

from .errors import CorruptStateFile, PoolExhausted, StateStoreError, UnknownKey
from .keypool import KeyPool, ProbeTarget
from .lease import Lease
from .ratelimits import Bucket, RateLimitInfo, parse_rate_limits
from .settings import CooldownSettings, DuplicateKeyId, KeySpec, PoolSettings, mask_secret
from .status import KeyStatus
from .stores import Store, open_store

__all__ = [
    "Bucket",
    "CooldownSettings",
    "CorruptStateFile",
    "DuplicateKeyId",
    "KeyPool",
    "KeySpec",
    "KeyStatus",
    "Lease",
    "PoolExhausted",
    "PoolSettings",
    "ProbeTarget",
    "RateLimitInfo",
    "StateStoreError",
    "Store",
    "UnknownKey",
    "mask_secret",
    "open_store",
    "parse_rate_limits",
]
