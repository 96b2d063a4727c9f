"""What the pool must never do: blame a key for the app hanging up, leave its state file readable by
others, stop with a bare traceback on a damaged state file, or echo a huge pin back in an error."""

from __future__ import annotations

import os
import stat

import pytest
from pool_helpers import FakeClock, specs

from llmitm.pool import CooldownSettings, CorruptStateFile, KeyPool, StateStoreError, UnknownKey, open_store
from llmitm.pool.keystate import KeyState, KeyUpdate
from llmitm.pool.outcome import Outcome, classify
from llmitm.pool.transitions import RULES, Attempt, transition


async def test_streams_the_app_aborted_do_not_open_the_breaker(make_pool):
    pool = make_pool(1, cooldown=CooldownSettings(failure_threshold=3))
    for _ in range(5):
        (await pool.acquire()).release(200, error="client disconnected", aborted=True, output_tokens=4)
    [status] = pool.snapshot()
    assert (status.state, status.requests, status.errors, status.output_tokens) == ("ok", 5, 0, 20)
    assert (await pool.acquire()).key_id == "k0"


async def test_the_same_breaks_without_the_abort_still_open_it(make_pool):
    pool = make_pool(1, cooldown=CooldownSettings(failure_threshold=3))
    for _ in range(3):
        (await pool.acquire()).release(200, error="stream broke")
    assert pool.snapshot()[0].state == "breaker-open"


async def test_an_aborted_trial_request_leaves_the_breaker_half_open(make_pool, clock):
    pool = make_pool(1, cooldown=CooldownSettings(failure_threshold=1, breaker_seconds=10))
    (await pool.acquire()).release(502)
    clock.advance(10)
    (await pool.acquire()).release(None, error="client disconnected", aborted=True)
    assert pool.snapshot()[0].state == "half-open"
    (await pool.acquire()).release(200)  # the next request is the trial, and it closes the breaker
    assert pool.snapshot()[0].state == "ok"


def test_every_outcome_has_a_rule_and_a_transition_changes_nothing_in_place():
    assert set(RULES) == set(Outcome)
    state = KeyState(failures=2, breaker_until=5.0)
    cooldown = CooldownSettings(failure_threshold=3)
    for outcome in Outcome:
        before = KeyState(**vars(state))
        transition(state, Attempt(outcome, now=100.0, status=500, trial=False), cooldown)
        assert state == before
    opened = transition(state, Attempt(Outcome.FAILURE, now=100.0, status=500), cooldown)
    assert opened.fields == {"failures": 3, "breaker_until": 130.0}
    assert transition(state, Attempt(Outcome.ABORTED, now=100.0), cooldown).fields == {}
    assert classify(200, None, "client disconnected", aborted=True) is Outcome.ABORTED
    assert classify(None, None, "client disconnected", aborted=True) is Outcome.ABORTED


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (429, None, Outcome.RATE_LIMITED),
    (401, None, Outcome.AUTH_FAILED),
    (502, None, Outcome.FAILURE),
    (200, {"type": "error", "error": {"type": "overloaded_error"}}, Outcome.OVERLOADED),
])
def test_what_the_upstream_said_before_the_app_left_still_counts(status, body, outcome):
    assert classify(status, body, "client disconnected", aborted=True) is outcome


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_state_file_and_its_wal_are_private_to_their_owner(tmp_path):
    old_umask = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{tmp_path}/state.db")
        await store.write("openai", {"k0": KeyUpdate({"disabled": True}, {"requests": 1})})
        files = [tmp_path / "state.db", tmp_path / "state.db-wal", tmp_path / "state.db-shm"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        await store.close()
    finally:
        os.umask(old_umask)


async def test_a_state_file_left_world_readable_is_made_private(tmp_path):
    path = tmp_path / "state.db"
    store = open_store(f"sqlite://{path}")
    await store.close()
    os.chmod(path, 0o644)
    store = open_store(f"sqlite://{path}")
    assert mode(path) == 0o600
    await store.close()


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupt_state_file_stops_with_an_error_that_names_it_and_says_what_to_do(tmp_path, content):
    path = tmp_path / ".llmitm-state.db"
    path.write_bytes(content)
    with pytest.raises(CorruptStateFile) as caught:
        open_store(f"sqlite://{path}")
    message = str(caught.value)
    assert str(path) in message and f"mv {path} {path}.corrupt" in message
    assert caught.value.path == str(path)
    assert path.read_bytes() == content  # left as it was: it may be another program's database


def test_a_state_file_in_a_missing_folder_is_a_named_error(tmp_path):
    with pytest.raises(StateStoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/no/such/folder/state.db")


async def test_an_unknown_pin_is_not_echoed_in_full():
    pool = KeyPool("openai", specs(1), clock=FakeClock(), max_wait=0)
    pin = "sk-" + "x" * 16_000
    with pytest.raises(UnknownKey) as caught:
        await pool.acquire(pin=pin)
    message = str(caught.value)
    assert len(message) < 120 and "16003 characters" in message and "x" * 40 not in message
    assert len(caught.value.key_id) <= 40
    with pytest.raises(UnknownKey, match="has no key 'nope'$"):
        await pool.acquire(pin="nope")  # a short id is shown as it is
