"""Host and choose() (pure): the queue's picture of one server and its placement order."""

from __future__ import annotations

import pytest

from proxy.lanes.placement import Host, choose, holders

M, N = "llama3.2:latest", "qwen2.5:7b-instruct"


def _host(name: str, lanes: int = 2, **kw: object) -> Host:
    return Host(name, lanes, **kw)  # type: ignore[arg-type]


class TestChoose:
    """Rule 9: placement order."""

    def test_warm_host_wins_over_a_less_loaded_cold_one(self) -> None:
        """A host with the model loaded wins even when it is busier."""
        a, b = _host("a"), _host("b")
        b.observe_loaded([M])
        b.bind(M)
        assert choose([a, b], M) is b

    def test_cold_everywhere_goes_to_the_least_loaded(self) -> None:
        """Among cold hosts the lowest share of held lanes wins."""
        a, b = _host("a", 2), _host("b", 4)
        a.bind(N)
        b.bind(N)
        assert choose([a, b], M) is b  # 1/4 < 1/2 (both warm for N, cold for M)

    def test_weight_scales_the_load(self) -> None:
        """Held lanes are divided by lanes x weight."""
        a, b = _host("a", 2, weight=3.0), _host("b", 2)
        a.bind(M)
        b.bind(M)
        assert choose([a, b], M) is a

    def test_ties_go_round_robin(self) -> None:
        """Equal hosts are picked in turn by the counter passed in."""
        hosts = [_host("a"), _host("b"), _host("c")]
        picked = [choose(hosts, M, turn=t) for t in range(4)]
        assert [h.name if h else None for h in picked] == ["a", "b", "c", "a"]

    def test_unhealthy_and_avoided_hosts_get_nothing(self) -> None:
        """Only healthy hosts the request does not avoid are candidates."""
        a, b = _host("a"), _host("b")
        a.healthy = False
        assert choose([a, b], M) is b
        assert choose([a, b], M, avoid=frozenset({"b"})) is None

    def test_never_a_host_without_the_model_while_another_has_it(self) -> None:
        """With the model installed somewhere, hosts without it are out, even when it is full."""
        a, b = _host("a"), _host("b")
        a.observe_installed([N])
        b.observe_installed([M])
        for _ in range(2):
            b.bind(M)
        assert choose([a, b], M) is None
        assert holders([a, b], M) == [b]

    def test_unknown_hosts_before_hosts_without_the_model(self) -> None:
        """If nobody has the model installed, a host not yet polled is tried first."""
        a, b = _host("a"), _host("b")
        a.observe_installed([N])
        assert choose([a, b], M) is b

    def test_a_model_installed_nowhere_may_go_anywhere(self) -> None:
        """A model no host has goes to some host (Ollama answers 404)."""
        a = _host("a")
        a.observe_installed([N])
        assert choose([a], "missing:latest") is a

    def test_per_model_lane_limit(self) -> None:
        """A model at its own lane limit finds no host; other models still do."""
        a = _host("a", 4, overrides={"all-minilm:latest": 1})
        a.bind("all-minilm:latest")
        assert choose([a], "all-minilm:latest") is None
        assert choose([a], M) is a

    def test_a_host_with_room_beats_one_that_would_evict(self) -> None:
        """Cold with room to load goes before cold that would unload a model."""
        a, b = _host("a", max_loaded=1), _host("b", max_loaded=2)
        a.observe_loaded([N])
        b.observe_loaded([N])
        assert a.evicts(M)
        assert choose([a, b], M) is b


class TestCapacity:
    """Rule 6: lanes per host and per model."""

    def test_room_for_counts_free_lanes_within_the_model_limit(self) -> None:
        """room_for is the free lanes, capped by what the model's own limit leaves."""
        a = _host("a", 4, overrides={M: 2})
        a.bind(M)
        a.bind(N)
        assert (a.room_for(M), a.room_for(N)) == (1, 2)
        assert a.free_for(M)

    def test_an_unhealthy_host_has_no_room(self) -> None:
        """An unhealthy host takes nothing."""
        a = _host("a")
        a.healthy = False
        assert (a.room_for(M), a.free_for(M)) == (0, False)

    def test_busy_counts_held_lanes(self) -> None:
        """busy is the lanes taken by bind and not yet given back."""
        a = _host("a", 3)
        lane = a.bind(M)
        a.bind(M)
        a.unbind(M, lane)
        assert (a.busy, a.running) == (1, {M: 1})

    def test_rejects_nonsense(self) -> None:
        """A host needs at least one lane, max_loaded >= 1 and a positive weight."""
        with pytest.raises(ValueError, match="lanes"):
            Host("x", 0)
        with pytest.raises(ValueError, match="weight"):
            Host("x", 1, weight=0.0)


class TestModelPicture:
    """Rule 7: installed and loaded models, as bindings and polls tell the host."""

    def test_bind_counts_a_swap_only_when_it_evicts(self) -> None:
        """A bind that unloads another model is a swap; loading into free room is not."""
        a = _host("a", 2, max_loaded=1)
        lane = a.bind(M)
        a.unbind(M, lane)
        assert a.swaps == 0
        a.bind(N)
        assert (a.swaps, list(a.loaded)) == (1, [N])

    def test_eviction_prefers_an_idle_model(self) -> None:
        """The least recently bound model that holds no lane is the one unloaded."""
        a = _host("a", 4, max_loaded=2)
        a.bind(M)
        lane = a.bind(N)
        a.unbind(N, lane)
        a.bind("third:latest")
        assert list(a.loaded) == [M, "third:latest"]

    def test_ps_replaces_the_picture_but_keeps_running_models(self) -> None:
        """`/api/ps` replaces the loaded set; models holding lanes stay."""
        a = _host("a")
        a.bind(M)
        a.observe_loaded([N])
        assert set(a.loaded) == {M, N}
        a.observe_loaded([])
        assert set(a.loaded) == {M}

    def test_tags_replace_the_installed_set(self) -> None:
        """Unknown until `/api/tags` answers; then exactly what it listed."""
        a = _host("a")
        assert (a.installed, a.has(M)) == (None, True)
        a.observe_installed([N])
        assert (a.installed, a.has(M), a.has(N)) == (frozenset({N}), False, True)

    def test_bind_counts_dispatches(self) -> None:
        """Every bind is one request sent to the host."""
        a = _host("a")
        a.bind(M)
        a.bind(N)
        assert a.dispatched == 2


class TestLaneNumbering:
    """Rule 13: each model's lane numbers from 0 on its host, lowest free first."""

    def test_lanes_are_numbered_per_model_from_zero(self) -> None:
        """Two models on a 4-lane host each count their own lanes from 0."""
        b = _host("b", 4)
        assert [b.bind(M), b.bind(M), b.bind(N), b.bind(M)] == [0, 1, 0, 2]
        assert b.free_for(M) is False

    def test_lowest_free_number_first(self) -> None:
        """A lane given back is the next one handed out."""
        b = _host("b", 3)
        b.bind(M)
        lane = b.bind(M)
        b.bind(M)
        b.unbind(M, lane)
        assert b.bind(M) == 1
