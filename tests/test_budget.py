"""When training stops to fit its job's time limit."""

import os
import signal

from realfake.budget import Checkpointing, TimeBudget


def test_budget_runs_out_a_margin_before_the_limit():
    assert TimeBudget(limit_minutes=10, margin_minutes=10, handle_sigterm=False).stop_requested()
    assert not TimeBudget(limit_minutes=10, margin_minutes=1, handle_sigterm=False).stop_requested()
    assert not TimeBudget(None, handle_sigterm=False).stop_requested()  # no limit: only a signal stops it


def test_sigterm_asks_training_to_stop_instead_of_killing_it():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        budget = TimeBudget(None)
        os.kill(os.getpid(), signal.SIGTERM)  # preemption: the process lives on to checkpoint
        assert budget.stop_requested()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_checkpoints_fall_due_by_steps():
    due = Checkpointing(every_steps=3)
    assert [s for s in range(1, 10) if due.due(s)] == [3, 6, 9]
    assert not any(Checkpointing().due(s) for s in range(1, 10))
