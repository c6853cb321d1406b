"""Host placement (pure): health, installed models, warm-first, least-loaded, round-robin."""

from __future__ import annotations

import pytest

from proxy.lanes.placement import Host, choose, holders
from proxy.relay.health import Breaker

M, N = "llama3.2:latest", "qwen2.5:7b-instruct"


def _host(name: str, lanes: int = 2, **kw: object) -> Host:
    return Host(name, lanes, **kw)  # type: ignore[arg-type]


class TestChoose:
    def test_warm_host_wins_over_a_less_loaded_cold_one(self) -> None:
        a, b = _host("a"), _host("b")
        b.observe_loaded([M])
        a_lane = a.bind(N)  # a is busier but cold for M
        assert a_lane == 0
        a.unbind(N, a_lane)
        b.bind(M)
        assert choose([a, b], M) is b

    def test_cold_everywhere_goes_to_the_least_loaded(self) -> None:
        a, b = _host("a", 2), _host("b", 4)
        a.bind(N)
        b.bind(N)
        assert choose([a, b], M) is b  # 1/4 < 1/2 (both warm for N, cold for M)

    def test_weight_scales_the_load(self) -> None:
        a, b = _host("a", 2, weight=3.0), _host("b", 2)
        a.bind(M)
        b.bind(M)
        assert choose([a, b], M) is a

    def test_ties_go_round_robin(self) -> None:
        hosts = [_host("a"), _host("b"), _host("c")]
        assert [choose(hosts, M, turn=t).name for t in range(4)] == ["a", "b", "c", "a"]  # type: ignore[union-attr]

    def test_unhealthy_and_avoided_hosts_get_nothing(self) -> None:
        a, b = _host("a"), _host("b")
        a.healthy = False
        assert choose([a, b], M) is b
        assert choose([a, b], M, avoid=frozenset({"b"})) is None

    def test_never_a_host_without_the_model_while_another_has_it(self) -> None:
        a, b = _host("a"), _host("b")
        a.installed, b.installed = frozenset({N}), frozenset({M})
        for _ in range(2):
            b.bind(M)
        assert choose([a, b], M) is None  # b is full; a lacks the model
        assert holders([a, b], M) == [b]

    def test_a_model_installed_nowhere_may_go_anywhere(self) -> None:
        a = _host("a")
        a.installed = frozenset({N})
        assert choose([a], "missing:latest") is a

    def test_per_model_lane_limit(self) -> None:
        a = _host("a", 4, model_lanes={"all-minilm:latest": 1})
        a.bind("all-minilm:latest")
        assert choose([a], "all-minilm:latest") is None
        assert choose([a], M) is a

    def test_a_host_with_room_beats_one_that_would_evict(self) -> None:
        a, b = _host("a", max_loaded=1), _host("b", max_loaded=2)
        a.observe_loaded([N])
        b.observe_loaded([N])
        assert a.evicts(M)
        assert choose([a, b], M) is b


class TestHost:
    def test_bind_counts_a_swap_only_when_it_evicts(self) -> None:
        a = _host("a", 2, max_loaded=1)
        lane = a.bind(M)
        a.unbind(M, lane)
        assert a.swaps == 0
        a.bind(N)
        assert (a.swaps, list(a.loaded)) == (1, [N])

    def test_eviction_prefers_an_idle_model(self) -> None:
        a = _host("a", 4, max_loaded=2)
        a.bind(M)
        lane = a.bind(N)
        a.unbind(N, lane)
        a.bind("third:latest")
        assert list(a.loaded) == [M, "third:latest"]

    def test_ps_replaces_the_picture_but_keeps_running_models(self) -> None:
        a = _host("a")
        a.bind(M)
        a.observe_loaded([N])
        assert set(a.loaded) == {M, N}
        a.observe_loaded([])
        assert set(a.loaded) == {M}

    def test_lanes_are_numbered_per_host_from_first_lane(self) -> None:
        b = _host("b", 2, first_lane=3)
        assert sorted([b.bind(M), b.bind(M)]) == [3, 4]
        assert b.free_for(M) is False

    def test_rejects_nonsense(self) -> None:
        with pytest.raises(ValueError, match="lanes"):
            Host("x", 0)


class TestBreaker:
    def test_opens_after_consecutive_failures_and_closes_after_the_cooldown(self) -> None:
        br = Breaker(failures=3, open_s=10.0)
        br.request_failed(0.0)
        br.request_failed(0.0)
        assert br.healthy(0.0)
        br.request_failed(1.0)
        assert not br.healthy(5.0)
        assert br.healthy(11.0)
        br.request_failed(12.0)  # half-open: one more failure reopens at once
        assert not br.healthy(12.0)
        assert (br.errors, br.trips) == (4, 2)

    def test_a_success_resets_the_count(self) -> None:
        br = Breaker(failures=2, open_s=1.0)
        br.request_failed(0.0)
        br.request_succeeded()
        br.request_failed(0.0)
        assert br.healthy(0.0)

    def test_active_check_failure_is_down_until_a_check_passes(self) -> None:
        br = Breaker()
        br.check(False, 0.0)
        assert not br.healthy(100.0)
        br.check(True, 100.0)
        assert br.healthy(100.0)
