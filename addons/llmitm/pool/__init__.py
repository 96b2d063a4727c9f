"""The upstream key pool: rotation, cooldowns, breakers, probes, concurrency caps and shared state."""

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
