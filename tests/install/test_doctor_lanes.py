"""The doctor's lane map over hand-made facts: each model's lanes and sources, and conflicts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.install.doctor_facts import (
    DoctorFacts,
    LaneSettings,
    OllamaProbe,
    ProxyHost,
    ProxyProbe,
)
from proxy.install.doctor_lanes import (
    check_lane_map,
    check_parallel,
    lane_map,
    render_lane_map,
)
from proxy.install.finding import Finding
from proxy.lanes.lanemap import Parallel
from proxy.ollama import ModelFacts

OLLAMA = "http://127.0.0.1:11434"
WHERE = "/proc/42/environ of ollama (pid 42)"
MODELS = {
    "llama3.2:latest": ModelFacts("llama3.2:latest", ("completion", "tools"), "llama"),
    "all-minilm:latest": ModelFacts("all-minilm:latest", ("embedding",), "bert"),
    "qwen3-vl:8b": ModelFacts("qwen3-vl:8b", ("completion", "vision"), "qwen3vl"),
}
DOWN = ProxyProbe("http://127.0.0.1:11435", error="refused")
FOUR = DoctorFacts(
    platform="linux",
    lanes_version="0.1.0",
    ollama=OllamaProbe(OLLAMA, version="0.12.3"),
    proxy=DOWN,
    ollama_env={},
    parallel=Parallel(4, "ollama-env", WHERE),
    model_names=(*MODELS, "pulling:latest"),
    model_facts=MODELS,
)


def with_settings(**values: Any) -> DoctorFacts:
    """FOUR with these lane settings (the proxy is down, so the settings decide)."""
    return replace(FOUR, settings=LaneSettings(**values))


def rows(facts: DoctorFacts) -> list[tuple[str, int, str, int, str]]:
    """The map's rows as tuples: model, lanes, source, Ollama's lanes, Ollama's source."""
    return [
        (r.model, r.lanes, r.source, r.ollama_lanes, r.ollama_source) for r in lane_map(facts).rows
    ]


def lane_findings(facts: DoctorFacts) -> list[Finding]:
    """The lane-map findings other than ok."""
    return [f for f in check_lane_map(facts) if f.severity != "ok"]


class TestLaneMap:
    def test_auto_rows_carry_their_sources(self) -> None:
        """Auto: NUM_PARALLEL for a chat model, 1 by rule for the others, 1 while unknown."""
        assert rows(FOUR) == [
            ("all-minilm:latest", 1, "rule:embedding", 1, "rule:embedding"),
            ("llama3.2:latest", 4, "ollama-env", 4, "ollama-env"),
            ("pulling:latest", 1, "assumed", 1, "assumed"),
            ("qwen3-vl:8b", 1, "rule:architecture qwen3vl", 1, "rule:architecture qwen3vl"),
        ]

    def test_a_cap_gives_every_model_the_cap(self) -> None:
        """A hand-set cap is each model's lanes (source config), a lower model_lanes wins."""
        facts = with_settings(cap=3, model_lanes={"qwen3-vl:8b": 1})
        assert rows(facts) == [
            ("all-minilm:latest", 3, "config", 1, "rule:embedding"),
            ("llama3.2:latest", 3, "config", 4, "ollama-env"),
            ("pulling:latest", 3, "config", 1, "assumed"),
            ("qwen3-vl:8b", 1, "config", 1, "rule:architecture qwen3vl"),
        ]

    def test_model_lanes_override_the_rules(self) -> None:
        """In auto mode a model_lanes entry is that model's lanes, source config."""
        facts = with_settings(model_lanes={"llama3.2:latest": 2})
        assert rows(facts)[1] == ("llama3.2:latest", 2, "config", 4, "ollama-env")

    def test_num_parallel_setting_when_unreadable(self) -> None:
        """An unreadable NUM_PARALLEL with num_parallel set: the setting, for both numbers."""
        facts = replace(with_settings(num_parallel=2), parallel=Parallel.unknown("remote"))
        assert rows(facts)[1] == ("llama3.2:latest", 2, "config", 2, "config")

    def test_the_running_proxy_cap_wins(self) -> None:
        """When the proxy answers, its own cap (from /stats) is judged, not the file's."""
        host = ProxyHost("default", OLLAMA, None, 4, "ollama-env", WHERE)
        running = ProxyProbe("http://127.0.0.1:11435", lanes=4, version="0.1.0", hosts=(host,))
        facts = replace(with_settings(cap=3), proxy=running)
        assert (lane_map(facts).cap, lane_map(replace(facts, proxy=DOWN)).cap) == (None, 3)


class TestRender:
    def test_one_line_per_model(self) -> None:
        """A heading with the mode and NUM_PARALLEL, then name, lanes, source, and Ollama's
        lanes where they differ."""
        facts = replace(with_settings(cap=3), model_names=("llama3.2:latest", "all-minilm:latest"))
        assert render_lane_map(lane_map(facts)) == [
            "lane map of default (http://127.0.0.1:11434): lanes 3 (set by hand), "
            "NUM_PARALLEL 4 (ollama-env)",
            "  all-minilm:latest    3  config  (Ollama runs 1: rule:embedding)",
            "  llama3.2:latest      3  config  (Ollama runs 4: ollama-env)",
        ]

    def test_auto_and_unknown(self) -> None:
        """Auto mode and an unknown NUM_PARALLEL say so; no models says so too."""
        facts = replace(FOUR, parallel=Parallel.unknown("x"), model_names=())
        assert render_lane_map(lane_map(facts)) == [
            'lane map of default (http://127.0.0.1:11434): lanes "auto", '
            "NUM_PARALLEL unknown, so 1 (assumed)",
            "  (no models)",
        ]


class TestCheckParallel:
    def test_a_cap_below_is_a_warning(self) -> None:
        """A cap below NUM_PARALLEL: the proxy is the limit, fix lanes = "auto"."""
        finding = check_parallel(with_settings(cap=2))
        assert finding.severity == "warn"
        assert "but the proxy sends up to 2 at once: the proxy is the limit." in finding.summary
        assert 'Set lanes = "auto" in [serve]' in (finding.fix or "")

    def test_a_cap_above_fails(self) -> None:
        """A cap above NUM_PARALLEL fails, with the install command or "auto" as fixes."""
        finding = check_parallel(with_settings(cap=6))
        assert finding.severity == "fail"
        assert "Run `lanes install --lanes 6`" in (finding.fix or "")
        assert 'lanes to "auto"' in (finding.fix or "")

    def test_num_parallel_setting_above_what_ollama_runs_fails(self) -> None:
        """num_parallel = 8 over Ollama's 4 fails (6 would too); 2 under it warns."""
        above, below = (
            check_parallel(with_settings(num_parallel=8)),
            check_parallel(with_settings(num_parallel=2)),
        )
        assert (above.severity, below.severity) == ("fail", "warn")
        assert "the proxy's settings say num_parallel = 8" in above.summary
        assert "Remove num_parallel from [serve]" in (above.fix or "")

    def test_a_matching_num_parallel_setting_is_what_the_proxy_follows(self) -> None:
        """num_parallel equal to the value read is ok; the proxy follows the setting."""
        finding = check_parallel(with_settings(num_parallel=4))
        assert (finding.severity, finding.summary.endswith("= 4 from config.")) == ("ok", True)

    def test_unreadable_with_num_parallel_set_is_ok(self) -> None:
        """Nothing to read, but num_parallel gives the value: ok, naming both."""
        facts = replace(with_settings(num_parallel=3), parallel=Parallel.unknown("remote"))
        finding = check_parallel(facts)
        assert (
            finding.severity,
            finding.summary.rpartition("uses ")[2].rstrip("."),
        ) == ("ok", "num_parallel = 3 from [serve]")


class TestCheckLaneMap:
    def test_no_conflict_is_one_ok(self) -> None:
        """Auto mode: one ok finding that counts the models."""
        assert [
            Finding(
                "lane_map",
                "ok",
                "No model gets more lanes than Ollama runs it with (4 model(s) mapped).",
            )
        ] == check_lane_map(FOUR)

    def test_model_lanes_above_a_rule_fails(self) -> None:
        """model_lanes giving an embedding model 4 fails, with the entry to remove or lower."""
        (finding,) = lane_findings(with_settings(model_lanes={"all-minilm:latest": 4}))
        assert finding.severity == "fail"
        assert finding.summary.startswith(
            "model_lanes gives all-minilm:latest 4 lanes, but Ollama runs it with 1 "
            "(rule:embedding)"
        )
        assert finding.fix == "Remove all-minilm:latest from [serve.model_lanes], or lower it to 1."

    def test_model_lanes_above_num_parallel_fails(self) -> None:
        """model_lanes above NUM_PARALLEL for a chat model fails the same way."""
        (finding,) = lane_findings(with_settings(model_lanes={"llama3.2:latest": 6}))
        assert "but Ollama runs it with 4 (ollama-env)" in finding.summary

    def test_model_lanes_in_an_upstreams_entry(self) -> None:
        """The fix names the [[serve.upstreams]] entry the model_lanes live in."""
        facts = with_settings(
            upstream="gpu",
            table='the [[serve.upstreams]] entry "gpu"',
            model_lanes={"qwen3-vl:8b": 2},
        )
        (finding,) = lane_findings(facts)
        assert 'from model_lanes of the [[serve.upstreams]] entry "gpu"' in (finding.fix or "")

    def test_a_cap_above_the_one_lane_models_fails_once(self) -> None:
        """A cap of 3 fails once, naming each model Ollama runs with 1 lane and the fixes."""
        (finding,) = lane_findings(with_settings(cap=3))
        assert (
            "lanes = 3 (set by hand) is more than Ollama runs for all-minilm:latest "
            "(1: rule:embedding), qwen3-vl:8b (1: rule:architecture qwen3vl)"
        ) in finding.summary
        assert finding.fix == (
            'Set lanes = "auto" in [serve], or give those models their lanes in '
            '[serve.model_lanes]: "all-minilm:latest" = 1, "qwen3-vl:8b" = 1.'
        )

    def test_model_lanes_above_a_rule_under_a_cap(self) -> None:
        """Under a cap, an entry above what Ollama runs is flagged apart from the cap."""
        model_lanes, cap = lane_findings(with_settings(cap=4, model_lanes={"all-minilm:latest": 4}))
        assert model_lanes.fix == "Lower all-minilm:latest to 1 in [serve.model_lanes]."
        assert "is more than Ollama runs for qwen3-vl:8b (1: rule:architecture qwen3vl):" in (
            cap.summary
        )

    def test_model_lanes_of_one_settle_a_cap(self) -> None:
        """With model_lanes of 1 for the one-lane models a cap of 4 leaves nothing to flag."""
        facts = with_settings(cap=4, model_lanes={"all-minilm:latest": 1, "qwen3-vl:8b": 1})
        assert lane_findings(facts) == []

    def test_a_model_not_yet_shown_is_not_judged(self) -> None:
        """A model whose /api/show did not answer is in the map but in no finding."""
        facts = replace(with_settings(cap=2), model_names=("pulling:latest",))
        assert lane_findings(facts) == []

    def test_settings_that_do_not_load(self) -> None:
        """Settings that do not load fail, quoting the error."""
        (finding,) = lane_findings(with_settings(error="invalid setting 'lanes'"))
        assert (
            finding.check,
            finding.summary,
        ) == ("settings", "The proxy's settings do not load: invalid setting 'lanes'.")
