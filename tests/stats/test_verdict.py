"""The verdict's rules (proxy.stats.verdict), one spec per rule: numbers in, a verdict out."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from proxy.stats.evidence import Change, LaneFact, Queueing, Recent, Reload, Truncation
from proxy.stats.schema import VerdictView
from proxy.stats.verdict import KINDS, judge

MODEL = "qwen2.5:7b-instruct"
# Ollama runs the model with 2 (read from its environment), and the proxy sends it 2.
FACT = LaneFact("default", MODEL, 2, "ollama-env", 2, "ollama-env", None, None)
S = 1_000_000_000  # nanoseconds in a second


def recent(**changes: Any) -> Recent:
    """A minute in which one client kept one of two lanes busy, decoding mostly: client_bound."""
    base = Recent(
        window_s=60.0,
        lanes=2,
        busy_lane_s=60.0,
        waiting_s=0.0,
        received=30,
        completed=30,
        depth=0,
        busy=1,
        prefill_ns=6 * S,
        decode_ns=50 * S,
        reload_ns=0,
        upstream_wait_ns=0,
        lane_facts=(FACT,),
    )
    return dataclasses.replace(base, **changes)


def saturated(**changes: Any) -> Recent:
    """Both lanes busy all minute, with requests waiting all along."""
    full = {"busy_lane_s": 120.0, "waiting_s": 60.0, "depth": 6, "busy": 2, "completed": 60}
    return recent(**(full | changes))


def kinds(r: Recent) -> tuple[str, list[str]]:
    primary, secondary = judge(r)
    return primary.kind, [v.kind for v in secondary]


def primary(r: Recent) -> VerdictView:
    return judge(r)[0]


class TestIdle:
    def test_nothing_asked_is_idle(self) -> None:
        """Rule 1: no request came, ran, waited or finished in the window: idle, alone."""
        quiet = recent(busy_lane_s=0.0, received=0, completed=0, busy=0, prefill_ns=0, decode_ns=0)
        assert kinds(quiet) == ("idle", [])

    def test_a_request_still_running_is_not_idle(self) -> None:
        """Rule 1: a lane held now (a request older than the window) is not idle."""
        running = recent(busy_lane_s=60.0, received=0, completed=0, busy=1)
        assert primary(running).kind != "idle"


class TestTruncating:
    CUT = Truncation(1.0, "notebook", MODEL, 2048, 1026, 5000, 200)

    def test_a_cut_prompt_is_primary_and_names_the_clients_and_the_fitting_num_ctx(self) -> None:
        """Rule 2: any cut prompt makes truncating primary; the fit holds prompt and answer."""
        other = dataclasses.replace(self.CUT, client="webui", estimated_tokens=900)
        verdict = primary(recent(truncations=(self.CUT, other, self.CUT)))
        assert verdict.kind == "truncating"
        assert "notebook and webui" in verdict.explanation
        assert verdict.numbers["fit_num_ctx"] == 8192  # 5000 + 200 tokens: the next power of 2
        assert "num_ctx 8192" in verdict.fix
        assert verdict.numbers["truncated"] == 3

    def test_without_a_prompt_size_the_fix_says_raise_it(self) -> None:
        """Rule 2: a cut prompt of unknown size asks for more than the num_ctx it was cut to."""
        unknown = dataclasses.replace(self.CUT, estimated_tokens=0)
        verdict = primary(recent(truncations=(unknown,)))
        assert "fit_num_ctx" not in verdict.numbers
        assert "Raise num_ctx above 2048" in verdict.fix


class TestReloadBound:
    def reload(self, client: str, before: str, after: str, previous: str) -> Reload:
        return Reload(1.0, client, MODEL, 3 * S, (Change("num_ctx", before, after),), previous)

    def test_loads_over_a_quarter_of_lane_time_name_the_option_and_who_sends_what(
        self,
    ) -> None:
        """Rule 3: reload time >= 25% of lane time: reload_bound, with each client's value."""
        events = (
            self.reload("webui", "8192", "auto", "miner"),
            self.reload("miner", "auto", "8192", "webui"),
        )
        verdict = primary(recent(reloads=events, reload_ns=15 * S))
        assert verdict.kind == "reload_bound"
        assert "num_ctx: auto from webui; 8192 from miner" in verdict.explanation
        assert verdict.numbers["reload_share"] == 0.25

    def test_fewer_loads_are_no_verdict(self) -> None:
        """Rule 3: reload time below a quarter of lane time does not make reload_bound."""
        events = (self.reload("webui", "8192", "auto", "miner"),)
        assert "reload_bound" not in kinds(recent(reloads=events, reload_ns=14 * S))[1]

    def test_a_reload_without_an_option_change_says_it_was_unloaded(self) -> None:
        """Rule 3: loads with no changed option mean the model was unloaded while in use."""
        event = Reload(1.0, "webui", MODEL, 30 * S, (), "webui")
        verdict = primary(recent(reloads=(event,), reload_ns=30 * S))
        assert "unloaded while in use" in verdict.explanation


class TestUpstreamQueueing:
    WAIT = Queueing(1.0, "default", MODEL, "miner", 2 * S)

    def test_slot_waits_over_a_tenth_of_lane_time_name_the_model_and_the_lane_map(
        self,
    ) -> None:
        """Rule 4: waits inside Ollama >= 10% of lane time: the lane-map row and its sources."""
        more = dataclasses.replace(FACT, lanes=3, source="config")
        verdict = primary(recent(queueing=(self.WAIT,), upstream_wait_ns=6 * S, lane_facts=(more,)))
        assert verdict.kind == "upstream_queueing"
        assert f"sends {MODEL} up to 3 at once (config)" in verdict.explanation
        assert "runs it with 2 (ollama-env)" in verdict.explanation
        assert (verdict.numbers["lanes"], verdict.numbers["ollama_lanes"]) == (3, 2)

    def test_fewer_waits_are_no_verdict(self) -> None:
        """Rule 4: waits below a tenth of lane time do not make upstream_queueing."""
        r = recent(queueing=(self.WAIT,), upstream_wait_ns=5 * S)
        assert "upstream_queueing" not in kinds(r)[1] + [primary(r).kind]

    def test_waits_with_matching_lanes_point_at_other_clients(self) -> None:
        """Rule 4: when the proxy sends no more than Ollama runs, someone else fills Ollama."""
        verdict = primary(recent(queueing=(self.WAIT,), upstream_wait_ns=6 * S))
        assert "Send every client through the proxy" in verdict.fix


class TestPrefillBound:
    def test_prompts_taking_most_of_ollamas_time_is_prefill_bound(self) -> None:
        """Rule 5: prompt_eval_duration >= half of prefill + decode: prefill_bound."""
        verdict = primary(recent(prefill_ns=30 * S, decode_ns=30 * S))
        assert verdict.kind == "prefill_bound"
        assert verdict.numbers["prefill_share"] == 0.5
        assert "static part" in verdict.fix

    def test_less_prefill_is_no_verdict(self) -> None:
        """Rule 5: prompts under half of Ollama's time do not make prefill_bound."""
        assert kinds(recent(prefill_ns=29 * S, decode_ns=31 * S)) == ("client_bound", [])


class TestLanesBound:
    def test_a_cap_below_the_lane_map_is_lanes_bound(self) -> None:
        """Rule 6: work waits and the proxy sends fewer than Ollama runs: lanes_bound."""
        capped = dataclasses.replace(FACT, lanes=1, source="config", ollama_lanes=4, cap=1)
        verdict = primary(saturated(lanes=1, busy_lane_s=60.0, lane_facts=(capped,)))
        assert verdict.kind == "lanes_bound"
        assert "at most 1 at once (config) while Ollama runs it with 4" in verdict.explanation
        assert 'Raise lanes to 4, or set lanes = "auto"' in verdict.fix

    def test_lanes_below_the_knee_are_lanes_bound(self) -> None:
        """Rule 6: lanes equal to Ollama's but below the measured knee: raise both to it."""
        below = dataclasses.replace(FACT, knee=6)
        verdict = primary(saturated(lane_facts=(below,)))
        assert verdict.kind == "lanes_bound"
        assert (verdict.numbers["lanes"], verdict.numbers["target_lanes"]) == (2, 6)
        assert "lanes install --lanes 6" in verdict.fix

    def test_a_one_lane_rule_is_not_raised_by_the_knee(self) -> None:
        """Rule 6: a model Ollama runs one at a time by its own rule stays at one: not lanes."""
        one = LaneFact("default", "qwen3-vl:8b", 1, "rule:architecture qwen3vl", 1,
                       "rule:architecture qwen3vl", None, 6)  # fmt: skip
        assert kinds(saturated(lanes=1, lane_facts=(one,))) == ("ollama_bound", [])


class TestOllamaBound:
    def test_waiting_work_with_lanes_at_ollamas_is_ollama_bound_with_the_drain_time(
        self,
    ) -> None:
        """Rule 7: work waits, lanes equal Ollama's: ollama_bound; 6 queued at 1/s drain in 6 s."""
        verdict = primary(saturated())
        assert verdict.kind == "ollama_bound"
        assert verdict.numbers["drain_s"] == 6.0
        assert "the queue of 6 drains in about 6 s" in verdict.explanation
        assert "`lanes tune` measures" in verdict.fix

    def test_the_knee_reached_says_so(self) -> None:
        """Rule 7: lanes at the knee lanes tune measured: ollama_bound, naming the knee."""
        at_knee = dataclasses.replace(FACT, knee=2)
        verdict = primary(saturated(lane_facts=(at_knee,)))
        assert verdict.kind == "ollama_bound"
        assert "the knee lanes tune measured" in verdict.explanation
        assert "`lanes tune`" not in verdict.fix

    def test_a_short_wait_is_not_waiting_work(self) -> None:
        """Rule 6: requests waiting under a quarter of the window do not count as work waiting."""
        assert primary(saturated(waiting_s=14.9)).kind == "client_bound"


class TestClientBound:
    def test_nothing_waiting_is_client_bound_with_the_requests_in_flight(self) -> None:
        """Rule 8: not idle and no work waiting: client_bound, with the requests kept in flight."""
        verdict = primary(recent())
        assert verdict.kind == "client_bound"
        assert verdict.numbers["in_flight"] == 1.0
        assert "1.0 requests in flight on average on 2 lanes (50% busy)" in verdict.explanation


class TestOrder:
    def test_a_saturated_gpu_busy_with_prompts_is_prefill_bound_then_ollama_bound(self) -> None:
        """The most specific kind is primary; the other kinds that hold follow in order."""
        assert kinds(saturated(prefill_ns=90 * S)) == ("prefill_bound", ["ollama_bound"])

    def test_every_kind_in_order(self) -> None:
        """With every specific kind holding, they come in the documented order."""
        r = saturated(
            truncations=(TestTruncating.CUT,),
            reloads=(Reload(1.0, "a", MODEL, S, (), None),),
            reload_ns=40 * S,
            queueing=(TestUpstreamQueueing.WAIT,),
            upstream_wait_ns=20 * S,
            prefill_ns=90 * S,
        )
        assert ("truncating", [*KINDS[1:4], "ollama_bound"]) == kinds(r)

    def test_exactly_one_of_idle_lanes_ollama_and_client_bound_holds(self) -> None:
        """Whatever the numbers, exactly one of the four load kinds holds."""
        load_kinds = {"idle", "lanes_bound", "ollama_bound", "client_bound"}
        for busy, waiting, received, knee in itertools.product(
            (0.0, 30.0, 120.0), (0.0, 10.0, 60.0), (0, 5), (None, 1, 6)
        ):
            fact = dataclasses.replace(FACT, knee=knee)
            r = recent(
                busy_lane_s=busy,
                waiting_s=waiting,
                received=received,
                completed=0,
                busy=0,
                depth=0,
                lane_facts=(fact,),
            )
            first, rest = kinds(r)
            assert len(load_kinds & {first, *rest}) == 1, (busy, waiting, received, knee)
