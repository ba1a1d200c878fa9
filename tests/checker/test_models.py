"""Every built-in model on small hand-written histories, and Jepsen's ok/fail/info rules."""

from __future__ import annotations

from checker import check, load_model
from checker.models import KV
from tests.checker.checker_helpers import history


def verdict(model: str, *rows, initial=None):
    return check(history(*rows), load_model(model, initial)).valid


# -- register --------------------------------------------------------------------------------

def test_register_read_sees_the_completed_write():
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "ok", "write", 1),
                   (1, "invoke", "read", None), (1, "ok", "read", 1)) is True


def test_register_stale_read_after_a_completed_write_is_a_violation():
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "ok", "write", 1),
                   (0, "invoke", "write", 2), (0, "ok", "write", 2),
                   (1, "invoke", "read", None), (1, "ok", "read", 1)) is False


def test_register_concurrent_read_may_see_old_or_new_value():
    for seen in (None, 1):
        assert verdict("register",
                       (0, "invoke", "write", 1),
                       (1, "invoke", "read", None), (1, "ok", "read", seen),
                       (0, "ok", "write", 1)) is True


def test_register_initial_value_comes_from_initial():
    rows = ((0, "invoke", "read", None), (0, "ok", "read", 0))
    assert verdict("register", *rows, initial=0) is True
    assert verdict("register", *rows) is False


# -- ok / fail / info ---------------------------------------------------------------------

def test_fail_never_took_effect():
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "fail", "write", 1),
                   (1, "invoke", "read", None), (1, "ok", "read", 1)) is False


def test_info_may_take_effect_later_than_its_completion_record():
    # the crashed write may take effect after the read of null, before the read of 1
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "info", "write", 1),
                   (1, "invoke", "read", None), (1, "ok", "read", None),
                   (1, "invoke", "read", None), (1, "ok", "read", 1)) is True


def test_info_may_never_take_effect():
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "info", "write", 1),
                   (1, "invoke", "read", None), (1, "ok", "read", None)) is True


def test_info_cannot_take_effect_before_its_invoke():
    assert verdict("register",
                   (1, "invoke", "read", None), (1, "ok", "read", 1),
                   (0, "invoke", "write", 1), (0, "info", "write", 1)) is False


def test_invoke_without_completion_counts_as_info():
    rows = [(0, "invoke", "write", 1),
            (1, "invoke", "read", None), (1, "ok", "read", None),
            (1, "invoke", "read", None), (1, "ok", "read", 1)]
    result = check(history(*rows), load_model("register"))
    assert result.valid is True
    assert result.stats["info"] == 1


def test_crashed_write_cannot_take_effect_twice():
    assert verdict("register",
                   (0, "invoke", "write", 1), (0, "info", "write", 1),
                   (1, "invoke", "write", 2), (1, "ok", "write", 2),
                   (2, "invoke", "read", None), (2, "ok", "read", 1),
                   (2, "invoke", "read", None), (2, "ok", "read", 2),
                   (2, "invoke", "read", None), (2, "ok", "read", 1)) is False


# -- cas-register ----------------------------------------------------------------------------

def test_cas_register_cas_applies_only_on_match():
    assert verdict("cas-register",
                   (0, "invoke", "write", 1), (0, "ok", "write", 1),
                   (0, "invoke", "cas", [1, 2]), (0, "ok", "cas", [1, 2]),
                   (1, "invoke", "read", None), (1, "ok", "read", 2)) is True
    assert verdict("cas-register",
                   (0, "invoke", "write", 1), (0, "ok", "write", 1),
                   (0, "invoke", "cas", [3, 2]), (0, "ok", "cas", [3, 2])) is False


def test_cas_register_failed_cas_changes_nothing():
    assert verdict("cas-register",
                   (0, "invoke", "write", 1), (0, "ok", "write", 1),
                   (0, "invoke", "cas", [1, 2]), (0, "fail", "cas", [1, 2]),
                   (1, "invoke", "read", None), (1, "ok", "read", 2)) is False


def test_cas_register_with_keys_checks_each_key_alone():
    result = check(history(
        (0, "invoke", "write", 1, "a"), (0, "ok", "write", 1, "a"),
        (1, "invoke", "read", None, "b"), (1, "ok", "read", None, "b"),
        (1, "invoke", "read", None, "a"), (1, "ok", "read", 2, "a"),
    ), load_model("cas-register"))
    assert result.valid is False
    by_key = {p.key: p.valid for p in result.partitions}
    assert by_key == {"a": False, "b": True}


# -- kv ----------------------------------------------------------------------------------

KV_ROWS = (
    (0, "invoke", "put", "x", "k"), (0, "ok", "put", "x", "k"),
    (1, "invoke", "append", "y", "k"), (1, "ok", "append", "y", "k"),
    (2, "invoke", "get", None, "k"), (2, "ok", "get", "xy", "k"),
    (0, "invoke", "write", 5, "j"), (0, "ok", "write", 5, "j"),
    (0, "invoke", "cas", [5, 6], "j"), (0, "ok", "cas", [5, 6], "j"),
    (1, "invoke", "delete", None, "j"), (1, "ok", "delete", None, "j"),
    (2, "invoke", "read", None, "j"), (2, "ok", "read", None, "j"),
)


def test_kv_supports_get_put_append_and_read_write_cas_delete():
    for partitioned in (True, False):
        assert check(history(*KV_ROWS), KV(partitioned=partitioned)).valid is True


def test_kv_append_order_is_checked():
    rows = KV_ROWS[:4] + ((2, "invoke", "get", None, "k"), (2, "ok", "get", "yx", "k"))
    for partitioned in (True, False):
        assert check(history(*rows), KV(partitioned=partitioned)).valid is False


def test_kv_partitions_are_keys():
    result = check(history(*KV_ROWS), load_model("kv"))
    assert [p.key for p in result.partitions] == ["k", "j"]


# -- multi-register ------------------------------------------------------------------------

def test_multi_register_txn_reads_see_earlier_writes():
    assert verdict("multi-register",
                   (0, "invoke", "txn", [["write", "x", 1], ["write", "y", 2]]),
                   (0, "ok", "txn", [["write", "x", 1], ["write", "y", 2]]),
                   (1, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
                   (1, "ok", "txn", [["read", "x", 1], ["read", "y", 2]]),
                   initial={"x": 0, "y": 0}) is True


def test_multi_register_torn_transaction_is_a_violation():
    assert verdict("multi-register",
                   (0, "invoke", "txn", [["write", "x", 1], ["write", "y", 2]]),
                   (0, "ok", "txn", [["write", "x", 1], ["write", "y", 2]]),
                   (1, "invoke", "txn", [["read", "x", None], ["read", "y", None]]),
                   (1, "ok", "txn", [["read", "x", 1], ["read", "y", 0]]),
                   initial={"x": 0, "y": 0}) is False


# -- mutex ---------------------------------------------------------------------------------

def test_mutex_acquire_release_in_turn_is_fine():
    assert verdict("mutex",
                   (0, "invoke", "acquire", None), (0, "ok", "acquire", None),
                   (1, "invoke", "acquire", None),
                   (0, "invoke", "release", None), (0, "ok", "release", None),
                   (1, "ok", "acquire", None)) is True


def test_mutex_two_holders_at_once_is_a_violation():
    assert verdict("mutex",
                   (0, "invoke", "acquire", None), (0, "ok", "acquire", None),
                   (1, "invoke", "acquire", None), (1, "ok", "acquire", None)) is False


def test_mutex_crashed_release_may_have_freed_the_lock():
    assert verdict("mutex",
                   (0, "invoke", "acquire", None), (0, "ok", "acquire", None),
                   (0, "invoke", "release", None), (0, "info", "release", None),
                   (1, "invoke", "acquire", None), (1, "ok", "acquire", None)) is True
