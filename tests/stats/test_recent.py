"""What the ledger keeps for the verdict, read back as one `Recent` window (pure, by clock)."""

from __future__ import annotations

from proxy.lanes.queue import HostSnapshot, QueueSnapshot
from proxy.lanes.snapshot import ModelSnapshot
from proxy.stats.evidence import Change
from proxy.stats.ledger import Ledger
from proxy.stats.recent import recent
from tests.stats.helpers import Clock, final_line, make_stats, ndjson_body, run_request, view_of


def _queued(stats: Ledger, clock: Clock, rid: int) -> None:
    stats.request_received(
        rid, client="alice", priority="normal", model="m", route="/api/generate", now=clock()
    )


class TestRecent:
    def test_waiting_counts_the_time_someone_waited_once(self) -> None:
        """Two requests waiting together for 2 s, then none for 3 s: 2 s of waiting work."""
        clock = Clock()
        stats = make_stats(clock)
        _queued(stats, clock, 1)
        _queued(stats, clock, 2)
        clock.advance(2.0)
        for rid in (1, 2):
            stats.request_admitted(rid, host="default", lane=rid, options={}, now=clock())
        clock.advance(3.0)
        window = recent(stats, None, clock())
        assert (window.window_s, window.waiting_s, window.busy_lane_s) == (5.0, 2.0, 6.0)

    def test_a_cut_prompt_keeps_its_size_and_its_answer_budget(self) -> None:
        """A prompt of 20000 characters cut to num_ctx 512: about 5000 tokens, num_predict 20."""
        clock = Clock()
        stats = make_stats(clock)
        cut = ndjson_body(2, final_line(prompt=258, output=2))  # v0.30's cut of 512
        options: dict[str, object] = {"num_ctx": 512, "num_predict": 20}
        run_request(stats, clock, 1, chunks=cut, options=options, prompt_chars=20_000)
        (truncation,) = recent(stats, None, clock()).truncations
        assert (truncation.num_ctx, truncation.estimated_tokens, truncation.num_predict) == (
            512,
            5000,
            20,
        )

    def test_a_reload_keeps_the_option_that_changed_and_who_sent_each_value(self) -> None:
        """notebook loads num_ctx 2048, then webui's 4096 reloads it: both clients are named."""
        clock = Clock()
        stats = make_stats(clock)
        body = ndjson_body(2, final_line(prompt=5, output=2))
        run_request(stats, clock, 1, client="notebook", chunks=body, options={"num_ctx": 2048})
        slow = ndjson_body(2, final_line(prompt=5, output=2, load_ms=800.0))
        run_request(stats, clock, 2, client="webui", chunks=slow, options={"num_ctx": 4096})
        window = recent(stats, None, clock())
        (reload,) = window.reloads
        assert (reload.client, reload.previous_client) == ("webui", "notebook")
        assert reload.changes == (Change("num_ctx", "2048", "4096"),)
        assert (window.reloaded, window.reload_ns) == (1, 800_000_000)

    def test_events_older_than_the_window_are_left_out(self) -> None:
        """A prompt cut 20 s ago is outside a 10 s window, in its events and in its counts."""
        clock = Clock()
        stats = make_stats(clock, verdict_window_s=10.0)
        cut = ndjson_body(2, final_line(prompt=600, output=2))
        run_request(stats, clock, 1, chunks=cut, options={"num_ctx": 512})
        assert recent(stats, None, clock()).truncated == 1
        clock.advance(20.0)
        window = recent(stats, None, clock())
        assert (window.truncations, window.truncated, window.received) == ((), 0, 0)

    def test_lane_facts_are_the_models_that_took_a_lane_in_the_window(self) -> None:
        """Of two models in the lane map, only the one sent in the window is judged."""
        clock = Clock()
        stats = make_stats(clock, knees={"default": 4})
        run_request(stats, clock, 1, model="used:latest")
        rows = tuple(
            ModelSnapshot(name, 2, "ollama-env", 0, 2, "ollama-env")
            for name in ("idle:latest", "used:latest")
        )
        host = HostSnapshot("default", 2, 0, True, 0, 0, models=rows, cap=None)
        queue = QueueSnapshot(2, 0, 0, {}, {}, None, (host,))
        (fact,) = recent(stats, queue, clock()).lane_facts
        assert (fact.model, fact.lanes, fact.ollama_lanes, fact.knee) == ("used:latest", 2, 2, 4)

    def test_the_view_carries_the_verdict(self) -> None:
        """/stats has the primary verdict and the secondary ones, judged from the ledger."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1)
        view = view_of(stats)
        assert (view.verdict.kind, view.secondary) == ("client_bound", [])
