"""Pool state in Redis, shared by several llmitm instances: cooldowns, disabled keys, quota, usage
counters and the number of requests in flight per key.

Layout (the `{…}` hash tag keeps one provider's keys in one cluster slot, so scripts may touch several):
  <prefix>:{<provider>}:key:<id>        hash: "f:<field>" -> JSON, "c:<counter>" -> integer
  <prefix>:{<provider>}:inflight:<id>   hash: instance id -> requests that instance has in flight
  <prefix>:{<provider>}:instances       sorted set: instance id -> liveness deadline (Redis server time)

In-flight counts are per instance and only count while the instance's liveness deadline (refreshed by a
heartbeat) lies ahead, so a crashed instance's leases stop counting after `instance_ttl` seconds instead
of occupying the cap forever. Deadlines use the Redis server's clock (TIME inside the scripts): instances
need not agree on time for this.

Hot path: acquire runs one script, which claims a slot under the cap and also refuses a key that the
shared state blocks (cooling, disabled, breaker open, quota spent), so another instance's cooldown takes
effect at once although the pool decides on a copy it re-reads only when older than its TTL (one more
script). State changes and releases are batched by the pool's writer (one pipeline, one script call);
a claim also carries this instance's releases of its key not sent yet. Cooldowns and
quota resets are epoch times on the instances' clocks: keep them NTP-synchronised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import redis.asyncio as aioredis

from ..keystate import COUNTERS, KeyUpdate
from ..tasks import CancelGuard, stop_task
from .base import SlotClaim, Store

log = logging.getLogger(__name__)

COMMAND_SECONDS = 2.0  # one Redis call, connecting included

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

# Sum the live instances' counts in one in-flight hash, dropping dead instances' entries on the way.
_LIVE_TOTAL = """
local function live_total(inflight, instances, now)
  local total = 0
  local entries = redis.call('HGETALL', inflight)
  for i = 1, #entries, 2 do
    local deadline = redis.call('ZSCORE', instances, entries[i])
    if deadline and tonumber(deadline) > now then
      total = total + math.max(0, tonumber(entries[i + 1]))
    else
      redis.call('HDEL', inflight, entries[i])
    end
  end
  return total
end
"""

# Give back `n` of this instance's slots on one key.
_GIVE_BACK = """
local function give_back(inflight, instance, n)
  if n > 0 and redis.call('HINCRBY', inflight, instance, -n) <= 0 then redis.call('HDEL', inflight, instance) end
end
"""

# KEYS: inflight hash, instances zset, state hash. ARGV: instance, cap (0: none), instance ttl, pool clock now,
# this instance's releases of the key not sent yet (applied first: a slot freed here is free for this claim).
# Returns {1, new total} granted, {0, total} at the cap, {2, total} refused because the shared state blocks
# the key (another instance cooled, disabled or tripped it, or saw its quota spent, after our last read):
# checking here costs no extra round trip and closes the window of the pool's cached copy.
_ACQUIRE = _NOW + _LIVE_TOTAL + _GIVE_BACK + """
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
give_back(KEYS[1], ARGV[1], tonumber(ARGV[5]))
local pool_now = tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[3], 'f:disabled', 'f:cooldown_until', 'f:breaker_until', 'f:quota')
local function later(value) local t = value and tonumber(value) return type(t) == 'number' and t > pool_now end
local blocked = st[1] == 'true' or later(st[2]) or later(st[3])
if not blocked and st[4] then
  local ok, quota = pcall(cjson.decode, st[4])
  if ok and type(quota) == 'table' then
    for _, b in pairs(quota) do
      if type(b) == 'table' and type(b[2]) == 'number' and b[2] <= 0 and type(b[3]) == 'number'
         and b[3] > pool_now then
        blocked = true
      end
    end
  end
end
local total = live_total(KEYS[1], KEYS[2], now)
if blocked then return {2, total} end
local cap = tonumber(ARGV[2])
if cap > 0 and total >= cap then return {0, total} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return {1, total + 1}
"""

# KEYS: inflight hashes. ARGV: instance, then a count per key. One script: all or nothing.
_RELEASE = _GIVE_BACK + """
for i = 1, #KEYS do give_back(KEYS[i], ARGV[1], tonumber(ARGV[i + 1])) end
return 1
"""

# KEYS: instances zset, then per key: state hash, inflight hash. Returns per key: flat state, live total.
_LOAD = _NOW + _LIVE_TOTAL + """
local out = {}
for i = 2, #KEYS, 2 do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
  out[#out + 1] = live_total(KEYS[i + 1], KEYS[1], now)
end
return out
"""

# KEYS: instances zset. ARGV: instance, ttl. Also forgets instances dead for an hour.
_HEARTBEAT = _NOW + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600)
return 1
"""


class RedisStore(Store):
    shared = True

    def __init__(self, url: str, prefix: str = "llmitm", instance_ttl: float = 30.0) -> None:
        self.url = url
        self.prefix = prefix
        self.instance_ttl = instance_ttl
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Bounded: an unreachable Redis must fail fast so the pool can fall back on local state. Each call is
        # bounded here (asyncio.timeout) rather than by the client's socket_timeout, which redis-py applies
        # through asyncio.wait_for: on Python 3.11 that loses cancellations (see tasks.py).
        self._redis = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=COMMAND_SECONDS)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._load = self._redis.register_script(_LOAD)
        self._heartbeat_script = self._redis.register_script(_HEARTBEAT)
        self._providers: set[str] = set()  # providers this instance holds slots in: they need heartbeats
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False

    def _state_key(self, provider: str, key_id: str) -> str:
        return f"{self.prefix}:{{{provider}}}:key:{key_id}"

    def _inflight_key(self, provider: str, key_id: str) -> str:
        return f"{self.prefix}:{{{provider}}}:inflight:{key_id}"

    def _instances_key(self, provider: str) -> str:
        return f"{self.prefix}:{{{provider}}}:instances"

    async def load(self, provider: str, key_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        ids = list(key_ids)
        if not ids:
            return {}
        keys = [self._instances_key(provider)]
        for key_id in ids:
            keys += [self._state_key(provider, key_id), self._inflight_key(provider, key_id)]
        async with asyncio.timeout(COMMAND_SECONDS):
            out = await self._load(keys=keys, args=[])
        result: dict[str, dict[str, Any]] = {}
        for i, key_id in enumerate(ids):
            flat, total = out[2 * i], int(out[2 * i + 1])
            if not flat and not total:
                continue
            fields: dict[str, Any] = {}
            for name, value in zip(flat[::2], flat[1::2], strict=True):
                if name.startswith("c:"):
                    fields[name[2:]] = int(value)
                elif name.startswith("f:"):
                    try:
                        fields[name[2:]] = json.loads(value)
                    except ValueError:
                        continue
            fields["in_flight"] = total
            result[key_id] = fields
        return result

    async def write(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        if not updates:
            return
        pipe = self._redis.pipeline(transaction=False)
        for key_id, update in updates.items():
            key = self._state_key(provider, key_id)
            items: list[str | int] = []  # HSET field value field value …
            for name, value in update.fields.items():
                if name == "in_flight":
                    continue  # counted in the in-flight hash, live
                items += [f"c:{name}", int(value)] if name in COUNTERS else [f"f:{name}", json.dumps(value)]
            if items:
                pipe.hset(key, items=items)
            for name, n in update.incr.items():
                pipe.hincrby(key, f"c:{name}", int(n))
        async with asyncio.timeout(COMMAND_SECONDS):
            await pipe.execute()

    async def try_acquire_slot(
        self, provider: str, key_id: str, cap: int | None, now: float, released: int = 0
    ) -> SlotClaim:
        self._ensure_heartbeat(provider)
        async with asyncio.timeout(COMMAND_SECONDS):
            code, total = await self._acquire(
                keys=[
                    self._inflight_key(provider, key_id),
                    self._instances_key(provider),
                    self._state_key(provider, key_id),
                ],
                args=[self.instance, cap or 0, self.instance_ttl, repr(now), released],
            )
        return SlotClaim(granted=int(code) == 1, in_flight=int(total), state_blocked=int(code) == 2)

    async def release_slots(self, provider: str, counts: Mapping[str, int]) -> None:
        ids = [key_id for key_id, n in counts.items() if n > 0]
        if ids:
            async with asyncio.timeout(COMMAND_SECONDS):
                await self._release(
                    keys=[self._inflight_key(provider, key_id) for key_id in ids],
                    args=[self.instance, *(counts[key_id] for key_id in ids)],
                )

    def _ensure_heartbeat(self, provider: str) -> None:
        self._providers.add(provider)
        if self._closed:
            return  # a claim after close (a pool outliving a reload) must not start a task nobody stops
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="llmitm-redis-heartbeat")

    async def _beat(self) -> None:
        guard = CancelGuard()
        while True:
            guard.check()
            await asyncio.sleep(self.instance_ttl / 3)
            for provider in list(self._providers):
                try:
                    async with asyncio.timeout(COMMAND_SECONDS):
                        await self._heartbeat_script(keys=[self._instances_key(provider)],
                                                     args=[self.instance, self.instance_ttl])
                except Exception as e:  # Redis restarting: the next beat tries again
                    log.warning("redis heartbeat failed: %s", e)

    async def close(self) -> None:
        self._closed = True
        heartbeat, self._heartbeat = self._heartbeat, None
        try:
            if heartbeat is not None:
                await stop_task(heartbeat)
            for provider in self._providers:
                # A clean exit: our leases stop counting now rather than after instance_ttl.
                async with asyncio.timeout(COMMAND_SECONDS):
                    await self._redis.zrem(self._instances_key(provider), self.instance)
        finally:  # bounded: the client's socket timeouts; also reached when close() is cancelled
            await self._redis.aclose()
