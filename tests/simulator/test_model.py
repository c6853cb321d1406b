"""The pure scheduler: queues, slots, reloads, evictions and keep-alive, driven by hand."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.simulator.catalog import DEFAULT_MODELS, ModelSpec
from proxy.simulator.content import chat_prompt_tokens, count_tokens, truncated_tokens
from proxy.simulator.model import LoadOptions, MaxQueueExceeded, Phase, Simulation, Ticket

LLAMA = "llama3.2:latest"
QWEN = "qwen2.5:7b-instruct"
MINI = "all-minilm:latest"


def make(**overrides: Any) -> Simulation:
    config: dict[str, Any] = {
        "slots": {LLAMA: 2, QWEN: 2, MINI: 1},
        "max_queue": 4,
        "max_loaded_models": 3,
        "load_seconds": 1.0,
        "default_num_ctx": 4096,
        "keep_alive_s": 300.0,
    }
    return Simulation(DEFAULT_MODELS, **(config | overrides))


def ctx(num_ctx: int = 4096) -> LoadOptions:
    return LoadOptions(num_ctx=num_ctx)


def phase(ticket: Ticket) -> Phase:
    """The ticket's phase (a call, so mypy does not narrow it between steps)."""
    return ticket.phase


def loaded(sim: Simulation, model: str = LLAMA, at: float = 0.0) -> None:
    """Load `model` with a load-only ticket and let the load finish."""
    sim.submit(model, ctx(), at, needs_slot=False)
    sim.advance(at)
    sim.advance(at + sim.load_seconds)
    assert model in sim.runners


class TestLoadOptions:
    def test_num_ctx_is_capped_at_the_model_context_and_at_least_4(self) -> None:
        """num_ctx above the training context is capped; tiny values become 4."""
        spec = ModelSpec(name="tiny", context_length=2048)
        assert LoadOptions.from_options({"num_ctx": 9000}, spec, 4096).num_ctx == 2048
        assert LoadOptions.from_options({"num_ctx": 1}, spec, 4096).num_ctx == 4
        assert LoadOptions.from_options({}, spec, 4096).num_ctx == 2048

    def test_reload_triggers(self) -> None:
        """num_ctx and num_batch changes reload; num_gpu -1 never does."""
        base = LoadOptions(num_ctx=4096)
        assert base.needs_reload(LoadOptions(num_ctx=8192))
        assert base.needs_reload(LoadOptions(num_ctx=4096, num_batch=256))
        assert not base.needs_reload(LoadOptions(num_ctx=4096, num_gpu=-1))
        assert base.needs_reload(LoadOptions(num_ctx=4096, num_gpu=20))


class TestScheduling:
    def test_first_request_waits_for_the_load(self) -> None:
        """An unloaded model loads first; the ticket runs only once the load is done."""
        sim = make()
        ticket = sim.submit(LLAMA, ctx(), 0.0)
        assert sim.advance(0.0) == []
        assert phase(ticket) == Phase.SCHEDULING
        assert sim.next_deadline() == 1.0
        assert [ticket] == sim.advance(1.0)
        assert phase(ticket) == Phase.RUNNING
        assert ticket.assigned_at == 1.0
        assert sim.counters[LLAMA].loads == 1

    def test_slots_bound_running_and_waiters_are_fifo(self) -> None:
        """With 2 slots, 5 tickets: 2 run, and the rest start in arrival order."""
        sim = make()
        loaded(sim)
        tickets = [sim.submit(LLAMA, ctx(), 2.0) for _ in range(5)]
        sim.advance(2.0)
        assert [t.phase for t in tickets] == [Phase.RUNNING] * 2 + [Phase.WAITING_SLOT] * 3
        started: list[Ticket] = []
        for step in range(3):
            running = [t for t in tickets if t.phase is Phase.RUNNING]
            sim.finish(running[0], 3.0 + step)
            started += sim.advance(3.0 + step)
        assert tickets[2:] == started
        assert sim.counters[LLAMA].max_in_flight == 2

    def test_loaded_model_never_rejects(self) -> None:
        """Requests for a loaded model skip the scheduler queue, even with max_queue 0."""
        sim = make(max_queue=0)
        sim.runners.clear()
        with pytest.raises(MaxQueueExceeded):
            sim.submit(LLAMA, ctx(), 0.0)
        sim = make(max_queue=1)
        loaded(sim)
        sim.max_queue = 0
        tickets = [sim.submit(LLAMA, ctx(), 2.0) for _ in range(50)]
        sim.advance(2.0)
        assert len(tickets) == 50
        assert sim.queued(LLAMA) == 48

    def test_full_queue_rejects_and_leaves_state_unchanged(self) -> None:
        """The scheduler queue holds max_queue tickets; one more raises MaxQueueExceeded."""
        sim = make(max_queue=2)
        sim.submit(LLAMA, ctx(), 0.0)
        sim.submit(LLAMA, ctx(), 0.0)
        before = list(sim.queue)
        with pytest.raises(MaxQueueExceeded):
            sim.submit(LLAMA, ctx(), 0.0)
        assert before == list(sim.queue)
        assert sim.counters[LLAMA].rejected == 1

    def test_load_only_ticket_needs_no_slot(self) -> None:
        """An empty-prompt request loads the model and is done without taking a slot."""
        sim = make()
        ticket = sim.submit(LLAMA, ctx(), 0.0, needs_slot=False)
        sim.advance(1.0)
        assert phase(ticket) == Phase.DONE
        assert sim.in_flight(LLAMA) == 0


class TestSlotWaits:
    def test_each_ticket_finding_the_slots_busy_counts_once(self) -> None:
        """Five tickets for a 2-slot model: 3 found every slot busy, counted once each,
        however long they wait."""
        sim = make()
        loaded(sim)
        tickets = [sim.submit(LLAMA, ctx(), 2.0) for _ in range(5)]
        counts = [sim.counters[LLAMA].slot_waits]
        for step in range(3):
            sim.finish(next(t for t in tickets if phase(t) is Phase.RUNNING), 3.0 + step)
            counts.append(sim.counters[LLAMA].slot_waits)
        assert (counts, sim.slot_waits_total) == ([3, 3, 3, 3], 3)

    def test_waiting_for_the_load_is_no_slot_wait(self) -> None:
        """Three tickets for an unloaded 1-slot model: after the load, one runs and the
        two behind it count a slot wait; waiting for the load itself counts none."""
        sim = make()
        for _ in range(3):
            sim.submit(MINI, ctx(), 0.0)
        before = sim.counters[MINI].slot_waits
        sim.advance(1.0)
        assert (before, sim.counters[MINI].slot_waits) == (0, 2)

    def test_within_the_slots_nothing_counts(self) -> None:
        """Two tickets for a 2-slot model, then a third after one finished: no slot wait."""
        sim = make()
        loaded(sim)
        first, _ = sim.submit(LLAMA, ctx(), 2.0), sim.submit(LLAMA, ctx(), 2.0)
        sim.finish(first, 3.0)
        sim.submit(LLAMA, ctx(), 3.0)
        assert (sim.in_flight(LLAMA) + sim.counters[LLAMA].completed, sim.slot_waits_total) == (
            3,
            0,
        )

    def test_load_only_tickets_never_count(self) -> None:
        """Empty-prompt tickets on a model with its slots full count no slot wait."""
        sim = make()
        loaded(sim)
        for _ in range(2):
            sim.submit(LLAMA, ctx(), 2.0)
        sim.submit(LLAMA, ctx(), 2.0, needs_slot=False)
        assert sim.counters[LLAMA].slot_waits == 0


class TestReload:
    def test_num_ctx_change_reloads_after_in_flight_work(self) -> None:
        """A new num_ctx waits for running and slot-waiting tickets, then reloads."""
        sim = make()
        loaded(sim)
        old = [sim.submit(LLAMA, ctx(), 2.0) for _ in range(3)]
        sim.advance(2.0)
        new = sim.submit(LLAMA, ctx(8192), 2.0)
        late = sim.submit(LLAMA, ctx(), 2.0)
        sim.advance(2.0)
        assert phase(new) == Phase.SCHEDULING
        assert phase(late) == Phase.SCHEDULING  # the draining runner takes no newcomers
        for t in old[:2]:
            sim.finish(t, 3.0)
        sim.advance(3.0)
        sim.finish(old[2], 4.0)
        sim.advance(4.0)
        assert sim.counters[LLAMA].reloads == 1
        assert sim.runners[LLAMA].options.num_ctx == 8192
        sim.advance(5.0)
        assert phase(new) == Phase.RUNNING
        assert new.assigned_at == 5.0

    def test_cancelled_head_aborts_its_load(self) -> None:
        """A client leaving during its load aborts it; the next ticket loads afresh."""
        sim = make()
        first = sim.submit(LLAMA, ctx(), 0.0)
        second = sim.submit(LLAMA, ctx(), 0.1)
        sim.advance(0.1)
        sim.cancel(first, 0.5)
        assert second is sim.runners[LLAMA].loading_for
        assert sim.next_deadline() == 1.5
        sim.advance(1.5)
        assert phase(second) == Phase.RUNNING
        assert sim.counters[LLAMA].loads == 2
        assert sim.counters[LLAMA].cancellations == 1


class TestEvictionAndKeepAlive:
    def test_idle_runner_is_evicted_for_a_new_model(self) -> None:
        """With max_loaded_models 1, loading another model evicts the idle one."""
        sim = make(max_loaded_models=1)
        loaded(sim, LLAMA)
        ticket = sim.submit(QWEN, ctx(), 5.0)
        sim.advance(5.0)
        assert LLAMA not in sim.runners
        assert sim.counters[LLAMA].evictions == 1
        sim.advance(6.0)
        assert phase(ticket) == Phase.RUNNING

    def test_busy_runner_is_evicted_once_idle(self) -> None:
        """A busy victim drains first; the new model loads after it finishes."""
        sim = make(max_loaded_models=1)
        loaded(sim, LLAMA)
        busy = sim.submit(LLAMA, ctx(), 2.0)
        sim.advance(2.0)
        other = sim.submit(QWEN, ctx(), 2.0)
        sim.advance(2.0)
        assert LLAMA in sim.runners
        assert phase(other) == Phase.SCHEDULING
        sim.finish(busy, 3.0)
        sim.advance(3.0)
        assert sim.counters[LLAMA].evictions == 1
        sim.advance(4.0)
        assert phase(other) == Phase.RUNNING

    def test_keep_alive_unloads_an_idle_runner(self) -> None:
        """An idle runner unloads keep_alive seconds after its last ticket left."""
        sim = make()
        ticket = sim.submit(LLAMA, ctx(), 0.0, keep_alive_s=10.0)
        sim.advance(1.0)
        sim.finish(ticket, 2.0)
        assert sim.next_deadline() == 12.0
        sim.advance(11.9)
        assert LLAMA in sim.runners
        sim.advance(12.0)
        assert LLAMA not in sim.runners
        assert sim.counters[LLAMA].unloads == 1

    def test_negative_keep_alive_never_unloads(self) -> None:
        """keep_alive < 0 keeps the model loaded forever."""
        sim = make()
        ticket = sim.submit(LLAMA, ctx(), 0.0, keep_alive_s=-1)
        sim.advance(1.0)
        sim.finish(ticket, 2.0)
        assert sim.next_deadline() is None

    def test_unload_waits_for_in_flight_work(self) -> None:
        """keep_alive 0 unload of a busy model happens when it goes idle."""
        sim = make()
        loaded(sim)
        busy = sim.submit(LLAMA, ctx(), 2.0)
        sim.advance(2.0)
        sim.unload(LLAMA, 2.0)
        sim.advance(2.0)
        assert LLAMA in sim.runners
        sim.finish(busy, 3.0)
        sim.advance(3.0)
        assert LLAMA not in sim.runners


class TestCancel:
    def test_cancelled_waiter_leaves_the_fifo(self) -> None:
        """A waiter that leaves never takes a slot; the one behind it does."""
        sim = make()
        loaded(sim)
        a, _b, c, d = (sim.submit(LLAMA, ctx(), 2.0) for _ in range(4))
        sim.advance(2.0)
        sim.cancel(c, 2.5)
        sim.finish(a, 3.0)
        assert [d] == sim.advance(3.0)
        assert sim.counters[LLAMA].cancellations == 1

    def test_cancelled_runner_frees_its_slot(self) -> None:
        """Cancelling a running ticket starts the next waiter."""
        sim = make(slots={LLAMA: 1})
        loaded(sim)
        a, b = (sim.submit(LLAMA, ctx(), 2.0) for _ in range(2))
        sim.advance(2.0)
        sim.cancel(a, 2.5)
        assert [b] == sim.advance(2.5)
        sim.cancel(a, 2.6)  # idempotent
        assert sim.counters[LLAMA].cancellations == 1

    def test_finish_after_cancel_changes_nothing(self) -> None:
        """A finished or cancelled ticket ignores later calls."""
        sim = make()
        loaded(sim)
        t = sim.submit(LLAMA, ctx(), 2.0)
        sim.advance(2.0)
        sim.cancel(t, 3.0)
        sim.finish(t, 3.0)
        assert sim.counters[LLAMA].completed == 0


class TestTokens:
    def test_count_is_chars_over_four_rounded_up(self) -> None:
        """Four characters make one token."""
        assert [count_tokens("x" * n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]

    def test_truncation_keeps_about_half_the_context(self) -> None:
        """v0.30+: num_ctx - (num_ctx - num_keep) // 2 when the prompt is longer."""
        assert truncated_tokens(10_000, 4096) == 2050
        assert truncated_tokens(4096, 4096) == 4096

    def test_chat_drops_oldest_messages_but_keeps_system_and_last(self) -> None:
        """Old user/assistant messages go first."""
        messages = [("system", "s" * 40), ("user", "u" * 400), ("user", "q" * 40)]
        assert chat_prompt_tokens(messages, 50) == (120, 20)
