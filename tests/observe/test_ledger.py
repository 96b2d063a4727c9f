"""The usage ledger: rows per attempt, totals by any dimension, shared through a real redis-server,
and a writer that never blocks or raises on the request path."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmitm.observe.ledger import LedgerRow, LedgerWriter, RedisLedger, SqliteLedger

NOW = time.time()


def row(**kw) -> LedgerRow:
    base = dict(at=NOW, client="ci", route="#0", provider="claude", model="claude-sonnet-4-5", key="a1", status=200,
                input=1300, cache_read=1000, cache_write=200, output=50, cost=0.0021)
    base.update(kw)
    return LedgerRow(**base)


ROWS = [
    row(),
    row(key="b2", status=429, input=0, cache_read=0, cache_write=0, output=0, cost=0.0, attempt=1),
    row(key="a1", attempt=2),
    row(client="app", provider="local", model="SmolLM3-3B", key="-", cost=None, input=10, cache_read=0, cache_write=0, output=5),
]


def check_totals(store) -> None:
    store.append(ROWS)
    by_key = {r["key"]: r for r in store.totals(NOW - 60, ("key",))}
    assert by_key["a1"]["requests"] == 2 and by_key["a1"]["input"] == 2600 and by_key["a1"]["cache_read"] == 2000
    assert by_key["b2"]["errors"] == 1 and by_key["b2"]["requests"] == 1
    assert by_key["-"]["unpriced"] == 1
    (everything,) = store.totals(NOW - 60, ())
    assert everything["requests"] == 4 and everything["output"] == 105
    assert everything["cost"] == pytest.approx(0.0042)
    by_client_model = store.totals(NOW - 60, ("client", "model"))
    assert [(r["client"], r["model"], r["requests"]) for r in by_client_model] == [
        ("app", "SmolLM3-3B", 1), ("ci", "claude-sonnet-4-5", 3)]


def test_sqlite_ledger_totals(tmp_path):
    store = SqliteLedger(tmp_path / "ledger.db")
    check_totals(store)
    assert (tmp_path / "ledger.db").stat().st_mode & 0o777 == 0o600
    assert store.totals(NOW + 10, ("key",)) == []
    store.close()


def test_redis_ledger_totals_are_shared_between_instances(tmp_path):
    from tests.pool.redis_server import running_redis_server

    with running_redis_server(str(tmp_path)) as url:
        one, two = RedisLedger(url), RedisLedger(url)
        one.append(ROWS[:2])
        two.append(ROWS[2:])
        (total,) = one.totals(NOW - 60, ())
        assert total == two.totals(NOW - 60, ())[0]
        assert total["requests"] == 4 and total["cost"] == pytest.approx(0.0042) and total["unpriced"] == 1
        one.close()
        two.close()


class BrokenStore:
    def append(self, rows):
        raise OSError("disk full")

    def totals(self, since, by):
        return []

    def close(self):
        pass


def test_writer_batches_and_survives_a_failing_store(tmp_path):
    async def run():
        store = SqliteLedger(tmp_path / "ledger.db")
        writer = LedgerWriter(store, interval=0.01)
        for _ in range(1200):
            writer.record(row())
        await writer.close()
        assert writer.written == 1200
        broken = LedgerWriter(BrokenStore(), max_queue=10, interval=0.01)
        for _ in range(15):
            broken.record(row())  # never raises
        await broken.close()
        assert broken.dropped == 5 and broken.failed == 10

    asyncio.run(run())
    store = SqliteLedger(tmp_path / "ledger.db")
    assert store.totals(NOW - 60, ())[0]["requests"] == 1200


def test_usage_command_sums_the_ledger_beside_the_state_file(tmp_path, capsys):
    import json as jsonlib

    from llmitm import cli

    config = tmp_path / "llmitm.yaml"
    config.write_text(f"state: sqlite:///{tmp_path}/state.db\n")
    SqliteLedger(tmp_path / "state-ledger.db").append(ROWS)
    assert cli.main(["usage", "-c", str(config), "--since", "1h", "--by", "provider", "--json"]) == 0
    out = jsonlib.loads(capsys.readouterr().out)
    assert {r["provider"]: r["requests"] for r in out} == {"claude": 3, "local": 1}
    assert cli.main(["usage", "-c", str(config), "--by", "key", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("key,requests,input")
    assert cli.main(["usage", "-c", str(config), "--by", "day,model"]) == 0
    assert "claude-sonnet-4-5" in capsys.readouterr().out
    assert cli.main(["usage", "-c", str(config), "--by", "colour"]) == 2
