"""The upstream key pool: rotation, cooldowns, breakers, probes, concurrency caps and shared state.

    store = open_store(state_url_for(config))               # memory | sqlite:///path | redis://host:port/db
    pool = KeyPool.from_config("openai", config.providers["openai"], store=store)
    lease = await pool.acquire(pin=None, exclude=tried)     # raises PoolExhausted(retry_after, reason)
    ...upstream call with lease.secret...
    lease.release(status, headers, body_json=..., error=..., input_tokens=..., output_tokens=...)

release() exactly once per lease (or `async with lease:`, which frees the slot without judging the key).
What a release does to the key, by outcome (see outcome.classify):
  2xx/3xx, and 4xx other than 401/402/403/429     success: resets the breaker's failure count
  429, rate_limit_error, RESOURCE_EXHAUSTED        cool down: Retry-After / retry-after-ms / Gemini retryDelay,
  529, 503, overloaded_error                       else a spent bucket's reset, else cooldown.default_seconds;
                                                   capped at cooldown.max_seconds
  insufficient_quota (OpenAI billing)              cool down for cooldown.max_seconds
  401, 402, 403                                    disable; keys_due_for_probe()/probe_result() re-enable
  other 5xx, or error= (connection failure)        failure: failure_threshold in a row open the breaker for
                                                   breaker_seconds, then one trial request (half-open)
  status=None and error=None                       abandoned: frees the slot only
Rate-limit headers of any response update the key's remaining quota; a spent bucket blocks the key until
its reset.
"""

from .errors import PoolExhausted, UnknownKey
from .keypool import CooldownSettings, KeyPool, ProbeTarget
from .keystate import KeySpec, keys_from_config
from .lease import Lease
from .ratelimits import Bucket, RateLimitInfo, parse_rate_limits
from .status import KeyStatus
from .store import Store, open_store

__all__ = [
    "Bucket",
    "CooldownSettings",
    "KeyPool",
    "KeySpec",
    "KeyStatus",
    "Lease",
    "PoolExhausted",
    "ProbeTarget",
    "RateLimitInfo",
    "Store",
    "UnknownKey",
    "keys_from_config",
    "open_store",
    "parse_rate_limits",
]
