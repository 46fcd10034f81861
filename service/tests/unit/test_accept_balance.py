"""The spread of a service's connections over its workers (common/accept_balance.py): the table
the workers share, the master's slots, and when a worker stands back from a new connection."""

from __future__ import annotations

import os
import sys

import pytest

from glance_service.common import accept_balance
from glance_service.common.accept_balance import AcceptGate, ConnectionTable


def test_a_claimed_slot_is_not_claimed_twice():
    table = ConnectionTable(slots=4)
    first = table.claim()
    second = table.claim()
    assert first != second


def test_a_worker_that_is_booting_or_stopping_is_left_nothing():
    table = ConnectionTable(slots=3)
    mine, booting, stopping = table.claim(), table.claim(), table.claim()
    # Claimed by the master: not accepting until the worker's loop publishes a count.
    assert table.count(booting) == accept_balance.NOT_ACCEPTING
    assert table.least_other(mine) is None
    table.publish(stopping, 4)
    assert table.least_other(mine) == 4
    table.publish(stopping, accept_balance.NOT_ACCEPTING)
    assert table.least_other(mine) is None


def test_the_master_frees_the_slots_of_workers_that_are_gone():
    table = ConnectionTable(slots=2)
    kept, gone = table.claim(), table.claim()
    table.publish(gone, 7)
    table.keep_only({kept})
    assert table.count(gone) is None
    # The freed slot is the next one handed out, afresh.
    assert table.claim() == gone
    assert table.count(gone) == accept_balance.NOT_ACCEPTING


def test_more_workers_than_slots_share_no_slot_and_are_not_balanced():
    table = ConnectionTable(slots=1)
    assert table.claim() == 0
    assert table.claim() is None


def test_the_least_loaded_other_worker_is_seen_across_fork():
    table = ConnectionTable(slots=3)
    mine, other, third = table.claim(), table.claim(), table.claim()
    pid = os.fork()
    if pid == 0:  # a worker: publishes into the shared table, seen by the parent
        table.publish(other, 5)
        table.publish(third, 2)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.least_other(mine) == 2
    table.publish(mine, 0)
    assert table.least_other(third) == 0


def test_no_other_worker_means_nothing_to_compare():
    table = ConnectionTable(slots=3)
    mine = table.claim()
    assert table.least_other(mine) is None


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def _gate(table, slot, clock, defer=0.002):
    return AcceptGate(table, slot, defer=defer, clock=clock)


def test_a_worker_holding_more_than_another_stands_back(clock):
    table = ConnectionTable(slots=2)
    mine, other = table.claim(), table.claim()
    table.publish(other, 3)
    gate = _gate(table, mine, clock)
    gate.publish(0)
    assert gate.should_accept(held=3) is True  # as loaded as the other: take it
    assert gate.should_accept(held=4) is False  # busier: the other takes it


def test_after_standing_back_the_worker_takes_what_is_still_waiting(clock):
    # The other worker may be stuck (a long request holding its main thread, or dying): a new
    # connection then waits at most one deferral, never starves.
    table = ConnectionTable(slots=2)
    mine, other = table.claim(), table.claim()
    table.publish(other, 0)
    gate = _gate(table, mine, clock)
    assert gate.should_accept(held=5) is False
    assert gate.resume_in() == pytest.approx(0.002)
    clock.now += 0.001
    assert gate.resume_in() == pytest.approx(0.001)
    clock.now += 0.001
    assert gate.resume_in() == 0
    gate.resumed()
    assert gate.should_accept(held=5) is True
    # The grace is for the one that waited through the deferral, not for the next ones.
    assert gate.should_accept(held=6) is False
    gate.resumed()
    clock.now += 0.01
    assert gate.should_accept(held=5) is False


def test_a_worker_alone_or_without_a_slot_always_accepts(clock):
    table = ConnectionTable(slots=2)
    alone = table.claim()
    assert _gate(table, alone, clock).should_accept(held=100) is True
    assert _gate(table, None, clock).should_accept(held=100) is True
    assert _gate(None, None, clock).should_accept(held=100) is True


def test_publish_is_the_held_count(clock):
    table = ConnectionTable(slots=2)
    mine = table.claim()
    gate = _gate(table, mine, clock)
    gate.publish(9)
    assert table.count(mine) == 9


def test_the_default_deferral_is_short():
    # A new connection on a busy worker waits this long at most before someone accepts it.
    assert 0 < accept_balance.DEFER <= sys.getswitchinterval()
