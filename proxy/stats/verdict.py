"""The verdict (pure): what limits throughput right now, judged from the last window.

It reads one `Recent` record (the last `verdict_window_s`, 60 s by default, or the uptime when
shorter) and names exactly one primary kind, plus every other kind that also holds as
secondary, each with a one-sentence explanation, the fix, and the numbers behind them. Every
number comes from what Ollama sends (its final-chunk durations), from the proxy's own timing
of its lanes, or from the lane map; the rules, each with its spec test:

1. idle: no request came, ran, waited or finished in the window.
2. truncating: Ollama cut at least one prompt in the window (a `prompt_truncated`). It names
   the clients and the num_ctx that would fit: a power of two that holds the longest cut
   prompt (its characters / 4) and its answer (num_predict, else a quarter of the prompt).
3. reload_bound: loads of a warm model (a `model_reloaded`'s load_duration) took at least
   RELOAD_SHARE of the lane time. It names the load-time option that changed and the values
   each client sent (none changed: the model was unloaded while in use).
4. upstream_queueing: requests waited inside Ollama for a parallel slot (as the
   `upstream_queueing` warning measures it, below its threshold too, but not under a tenth of
   a request's own time there) for at least UPSTREAM_SHARE of the lane time. It names the
   model and its lane-map row: what the proxy sends, what Ollama runs, and their sources.
5. prefill_bound: prompt evaluation took at least PREFILL_SHARE of Ollama's time on the
   requests (prompt_eval_duration against prompt_eval_duration + eval_duration).
6. work waits: some request waited for a lane during at least WAIT_SHARE of the window.
   lanes_bound: work waits, and a model in use may run more at once than the proxy sends:
   its lanes are below what Ollama runs it with (the cap is below the lane map), or below
   the knee `lanes tune` measured for its host (unless a one-lane rule of Ollama's holds it).
7. ollama_bound: work waits and no lanes_bound: the proxy sends as many as Ollama runs (and
   the knee, when known, is reached), so the GPU is the limit. It says how long the waiting
   requests take to drain at the rate requests completed in the window.
8. client_bound: not idle and work does not wait: lanes are free whenever the clients have
   fewer requests in flight than lanes; more at once (the miner's workers) would go faster.

Exactly one of idle, lanes_bound, ollama_bound and client_bound holds (1, 6-8). The primary
is the first that holds in the order truncating, reload_bound, upstream_queueing,
prefill_bound, lanes_bound, ollama_bound, client_bound, idle; the rest that hold are
secondary, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.stats.evidence import LaneFact, Recent
from proxy.stats.schema import VerdictView
from proxy.stats.verdict_text import (
    client_bound_text,
    idle_text,
    lanes_bound_text,
    ollama_bound_text,
    prefill_text,
    queueing_text,
    reload_text,
    truncating_text,
)

__all__ = [
    "KINDS",
    "PREFILL_SHARE",
    "RELOAD_SHARE",
    "UPSTREAM_SHARE",
    "WAIT_SHARE",
    "judge",
    "raises_lanes",
]

KINDS = (
    "truncating",
    "reload_bound",
    "upstream_queueing",
    "prefill_bound",
    "lanes_bound",
    "ollama_bound",
    "client_bound",
    "idle",
)
WAIT_SHARE = 0.25  # of the window with some request waiting for a lane: work waits
RELOAD_SHARE = 0.25  # of the lane time spent loading a warm model again
UPSTREAM_SHARE = 0.10  # of the lane time spent waiting inside Ollama for a slot
PREFILL_SHARE = 0.5  # of Ollama's prefill + decode time spent on prompts

Rule = Callable[[Recent], VerdictView | None]


def _is_idle(r: Recent) -> bool:
    return not (r.received or r.completed or r.busy_lane_s > 0 or r.depth or r.busy)


def _waits(r: Recent) -> bool:
    return r.window_s > 0 and r.waiting_s >= WAIT_SHARE * r.window_s


def _lane_share(ns: int, r: Recent) -> float:
    """`ns` as a share of the lane time in the window (0 when no lane was held)."""
    return ns / 1e9 / r.busy_lane_s if r.busy_lane_s > 0 else 0.0


def raises_lanes(fact: LaneFact) -> int | None:
    """How many at once Ollama could run this model with, when that is more than the proxy
    sends it: its lane-map number, or the host's knee (not for a one-lane rule)."""
    best = fact.ollama_lanes
    if fact.knee is not None and not fact.ollama_source.startswith("rule:"):
        best = max(best, fact.knee)
    return best if best > fact.lanes else None


def idle(r: Recent) -> VerdictView | None:
    """Rule 1."""
    return idle_text(r) if _is_idle(r) else None


def truncating(r: Recent) -> VerdictView | None:
    """Rule 2."""
    return truncating_text(r) if r.truncations else None


def reload_bound(r: Recent) -> VerdictView | None:
    """Rule 3."""
    share = _lane_share(r.reload_ns, r)
    return reload_text(r, share) if r.reloads and share >= RELOAD_SHARE else None


def upstream_queueing(r: Recent) -> VerdictView | None:
    """Rule 4."""
    share = _lane_share(r.upstream_wait_ns, r)
    return queueing_text(r, share) if r.queueing and share >= UPSTREAM_SHARE else None


def prefill_bound(r: Recent) -> VerdictView | None:
    """Rule 5."""
    spent = r.prefill_ns + r.decode_ns
    share = r.prefill_ns / spent if spent > 0 else 0.0
    return prefill_text(r, share) if spent > 0 and share >= PREFILL_SHARE else None


def lanes_bound(r: Recent) -> VerdictView | None:
    """Rule 6."""
    if _is_idle(r) or not _waits(r):
        return None
    short = [(f, n) for f in r.lane_facts if (n := raises_lanes(f)) is not None]
    if not short:
        return None
    fact, more = max(short, key=lambda pair: pair[1] - pair[0].lanes)
    return lanes_bound_text(r, fact, more)


def ollama_bound(r: Recent) -> VerdictView | None:
    """Rule 7."""
    if _is_idle(r) or not _waits(r) or lanes_bound(r) is not None:
        return None
    return ollama_bound_text(r)


def client_bound(r: Recent) -> VerdictView | None:
    """Rule 8."""
    return client_bound_text(r) if not _is_idle(r) and not _waits(r) else None


RULES: tuple[Rule, ...] = (
    truncating,
    reload_bound,
    upstream_queueing,
    prefill_bound,
    lanes_bound,
    ollama_bound,
    client_bound,
    idle,
)


def judge(r: Recent) -> tuple[VerdictView, list[VerdictView]]:
    """The primary verdict and the secondary ones, in the order of KINDS."""
    held = [v for rule in RULES if (v := rule(r)) is not None]
    return held[0], held[1:]
