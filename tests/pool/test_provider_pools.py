"""The pools the proxy runs with, built from the config and carried across hot reloads (in process)."""

from __future__ import annotations

import pytest

from llmitm.config import parse_config
from llmitm.pool import CooldownSettings
from llmitm.provider_pools import PoolConfigError, PoolRegistry, pool_settings

BASE = """
state: {state}
providers:
  openai:
    protocol: openai-chat
    base_url: https://api.openai.com
    strategy: round-robin
    max_wait_seconds: 0
    cooldown: {{default_seconds: 7, failure_threshold: 2}}
    keys: {keys}
  local:
    protocol: openai-chat
    base_url: http://127.0.0.1:9
{extra}routes: [{{provider: openai}}]
"""


def config(tmp_path, keys="[sk-first-secret-0001, sk-second-secret-0002]", state=None, extra=""):
    state = state or f"sqlite://{tmp_path}/state.db"
    return parse_config(BASE.format(state=state, keys=keys, extra=extra), str(tmp_path / "llmitm.yaml"), env={})


def test_settings_come_from_the_provider_config(tmp_path):
    settings = pool_settings("openai", config(tmp_path).providers["openai"])
    assert [k.id for k in settings.keys] == ["openai#1", "openai#2"]
    assert (settings.strategy, settings.max_wait) == ("round-robin", 0)
    assert settings.cooldown == CooldownSettings(default_seconds=7, failure_threshold=2)


async def test_a_reload_keeps_what_the_pool_learned_and_serves_the_new_key(tmp_path):
    registry = PoolRegistry()
    registry.apply(config(tmp_path))
    assert set(registry.pools) == {"openai"}  # a provider without keys forwards the app's own credential
    pool = registry.get("openai")
    (await pool.acquire(pin="openai#1")).release(429, {"retry-after": "60"})
    held = await pool.acquire(pin="openai#2")

    registry.apply(config(tmp_path, keys="[sk-first-secret-0001, sk-second-secret-0002, sk-third-secret-0003]"))
    assert registry.get("openai") is pool  # same store: the pool is reconfigured, not replaced
    assert [s.state for s in pool.snapshot()] == ["cooling", "ok", "ok"]
    assert (await pool.acquire(exclude={"openai#2"})).key_id == "openai#3"
    held.release(200)  # a lease from before the reload is released normally
    await registry.close()


async def test_a_reload_that_moves_the_state_store_keeps_old_leases_working(tmp_path):
    registry = PoolRegistry()
    registry.apply(config(tmp_path))
    old = registry.get("openai")
    held = await old.acquire()
    (tmp_path / "elsewhere").mkdir()
    registry.apply(config(tmp_path, state=f"sqlite://{tmp_path}/elsewhere/state.db"))
    assert registry.get("openai") is not old and registry.store_url.endswith("elsewhere/state.db")
    held.release(500)  # finishes on the old pool and its store
    await registry.close()  # closes the retired pool and store too


async def test_a_reload_to_a_missing_state_folder_changes_nothing(tmp_path):
    registry = PoolRegistry()
    registry.apply(config(tmp_path))
    pool, store, url = registry.get("openai"), registry.store, registry.store_url
    # The config check refuses this too; the registry must hold on its own (defence in depth).
    broken = config(tmp_path, keys="[sk-other-secret-0009]").model_copy(update={"state": f"sqlite://{tmp_path}/missing/state.db"})
    with pytest.raises(PoolConfigError, match="missing.*does not exist"):
        registry.apply(broken)
    assert (registry.pools, registry.store, registry.store_url) == ({"openai": pool}, store, url)
    assert pool.key_ids == ["openai#1", "openai#2"]
    (await pool.acquire()).release(200)  # still serving with the previous keys
    await registry.close()


async def test_a_reload_with_duplicate_key_ids_changes_nothing(tmp_path):
    registry = PoolRegistry()
    registry.apply(config(tmp_path))
    pool = registry.get("openai")
    # The config check refuses duplicate ids too; the registry must hold on its own (defence in depth).
    valid = config(tmp_path, keys="[{key: sk-new-secret-0003, id: a}, {key: sk-new-secret-0004, id: b}]",
                   extra="""  anthropic:
    protocol: anthropic
    base_url: https://api.anthropic.com
    keys: [sk-ant-secret-0001]
""")
    openai = valid.providers["openai"]
    twins = [openai.keys[0], openai.keys[1].model_copy(update={"id": "a"})]
    duplicated = valid.model_copy(update={"providers": {**valid.providers, "openai": openai.model_copy(update={"keys": twins})}})
    with pytest.raises(PoolConfigError, match=r"providers\.openai: duplicate key ids \['a'\]"):
        registry.apply(duplicated)
    assert set(registry.pools) == {"openai"} and registry.get("openai") is pool  # anthropic not half-added
    assert pool.key_ids == ["openai#1", "openai#2"]
    await registry.close()


async def test_a_provider_removed_by_a_reload_is_retired_and_closed(tmp_path):
    registry = PoolRegistry()
    registry.apply(config(tmp_path))
    pool = registry.get("openai")
    lease = await pool.acquire()
    registry.apply(config(tmp_path, keys="[]"))
    assert registry.pools == {}
    lease.release(200)
    await registry.close()
    assert pool._writer._task is None  # closed: its writer stopped and no new one starts


def test_the_pool_package_imports_nothing_of_the_rest_of_llmitm():
    import ast
    from pathlib import Path

    import llmitm.pool

    root = Path(llmitm.pool.__file__).parent
    outside = []
    for path in root.rglob("*.py"):
        package = ["llmitm", "pool", *path.relative_to(root).parent.parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                modules = [".".join([*base, *([node.module] if node.module else [])])]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            outside += [f"{path.name}: {m}" for m in modules if m.startswith("llmitm") and not m.startswith("llmitm.pool")]
    assert outside == []


def test_the_pool_masks_secrets_as_the_config_does():
    from llmitm.config import mask_secret as config_mask
    from llmitm.pool import mask_secret as pool_mask

    for secret in ["short", "sk-12345678", "sk-ant-api03-" + "x" * 80 + "WXYZ"]:
        assert pool_mask(secret) == config_mask(secret)


async def test_closing_the_pools_closes_every_pool_even_when_one_fails(tmp_path, caplog):
    extra = ("  other:\n    protocol: anthropic\n    base_url: https://api.anthropic.com\n"
             "    keys: [sk-ant-other-secret-0003]\n")
    registry = PoolRegistry()
    registry.apply(config(tmp_path, extra=extra))
    failing, other = registry.get("openai"), registry.get("other")
    closed = []

    async def broken_close():
        raise RuntimeError("store gone")

    async def recorded_close(original=other.close):
        closed.append("other")
        await original()

    failing.close, other.close = broken_close, recorded_close
    await registry.close()
    assert closed == ["other"]
    assert "closing a key pool failed: store gone" in caplog.text
