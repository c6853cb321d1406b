"""The verdict's words (pure): for each kind, its one-sentence explanation, fix and numbers."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from proxy.stats.evidence import LaneFact, Recent, Truncation
from proxy.stats.schema import VerdictView

__all__ = [
    "client_bound_text",
    "fit_num_ctx",
    "idle_text",
    "lanes_bound_text",
    "names",
    "ollama_bound_text",
    "prefill_text",
    "queueing_text",
    "reload_text",
    "truncating_text",
]

Numbers = dict[str, int | float]


def names(items: Iterable[str], limit: int = 3) -> str:
    """`a`, `a and b`, `a, b and c`, `a, b, c and 2 more`."""
    found = list(dict.fromkeys(items))
    if len(found) > limit:
        return f"{', '.join(found[:limit])} and {len(found) - limit} more"
    return " and ".join([", ".join(found[:-1]), found[-1]]) if len(found) > 1 else "".join(found)


def fit_num_ctx(cut: Truncation) -> int | None:
    """A num_ctx that holds the cut prompt (its characters / 4) and its answer (num_predict,
    else a quarter of the prompt): the next power of two; None when the size is unknown."""
    if cut.estimated_tokens <= 0:
        return None
    answer = cut.num_predict if cut.num_predict and cut.num_predict > 0 else 0
    need = max(cut.estimated_tokens + (answer or cut.estimated_tokens // 4), cut.num_ctx + 1)
    return 1 << (need - 1).bit_length()


def _window(r: Recent) -> str:
    """The window in words; a long one in whole seconds, as the buckets count them."""
    if r.window_s >= 10:
        return f"the last {math.ceil(r.window_s - 0.05)} s"
    return f"the last {r.window_s:.1f} s"


def _lanes(count: int) -> str:
    return f"{count} lane" if count == 1 else f"{count} lanes"


def _busy(r: Recent) -> float:
    available = r.lanes * r.window_s
    return min(1.0, r.busy_lane_s / available) if available > 0 else 0.0


def _waiting(r: Recent) -> float:
    return min(1.0, r.waiting_s / r.window_s) if r.window_s > 0 else 0.0


def _view(kind: str, explanation: str, fix: str, r: Recent, numbers: Numbers) -> VerdictView:
    shown = {"window_s": round(r.window_s, 1)} | {
        k: round(v, 3) if isinstance(v, float) else v for k, v in numbers.items()
    }
    return VerdictView(kind=kind, explanation=explanation, fix=fix, numbers=shown)


def _queue(r: Recent) -> str:
    return (
        f"Work waited for a lane {_waiting(r):.0%} of {_window(r)} with lanes {_busy(r):.0%} busy"
    )


def idle_text(r: Recent) -> VerdictView:
    """Rule 1's words."""
    return _view(
        "idle",
        f"No request came in {_window(r)}.",
        "Nothing to fix; send work through the proxy and the verdict follows.",
        r,
        {},
    )


def truncating_text(r: Recent) -> VerdictView:
    """Rule 2's words: the clients whose prompts were cut, and the num_ctx that fits them."""
    cuts = r.truncations
    latest = cuts[-1]
    clients = [c for c, _ in Counter(cut.client for cut in cuts).most_common()]
    fits = [(fit, cut) for cut in cuts if (fit := fit_num_ctx(cut)) is not None]
    count = max(r.truncated, len(cuts))
    numbers: Numbers = {"truncated": count, "num_ctx": latest.num_ctx}
    explanation = (
        f"Ollama silently cut prompts that {names(clients)} sent to fit num_ctx "
        f"{latest.num_ctx} for {latest.model} ({count} in {_window(r)})."
    )
    if fits:
        fit, longest = max(fits, key=lambda pair: pair[0])
        numbers |= {"fit_num_ctx": fit, "longest_prompt_tokens": longest.estimated_tokens}
        fix = (
            f"Send num_ctx {fit} for {longest.model} (the longest cut prompt is about "
            f"{longest.estimated_tokens} tokens), or force it with [serve.pin] num_ctx; "
            "or send shorter prompts."
        )
    else:
        fix = f"Raise num_ctx above {latest.num_ctx} for {latest.model}, or send shorter prompts."
    return _view("truncating", explanation, fix, r, numbers)


def reload_text(r: Recent, share: float) -> VerdictView:
    """Rule 3's words: the option that changes and who sends which value."""
    events = r.reloads
    model = Counter(e.model for e in events).most_common(1)[0][0]
    values: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        for change in e.changes:
            values[change.option][change.after].append(e.client)
            if e.previous_client is not None:
                values[change.option][change.before].append(e.previous_client)
    count = max(r.reloaded, len(events))
    numbers: Numbers = {
        "reload_share": share,
        "reloaded_requests": count,
        "reload_s": round(r.reload_ns / 1e9, 1),
    }
    head = (
        f"Model loads took {share:.0%} of lane time: {count} requests in {_window(r)} waited "
        f"for Ollama to load {model} again"
    )
    if not values:
        explanation = (
            f"{head} although no load-time option changed, so it was unloaded while in use "
            "(another model took its place, keep_alive ran out, or Ollama restarted)."
        )
        fix = "Keep it loaded: raise OLLAMA_MAX_LOADED_MODELS or keep_alive, or use fewer models."
        return _view("reload_bound", explanation, fix, r, numbers)
    option = max(values, key=lambda o: sum(len(c) for c in values[o].values()))
    sent = "; ".join(f"{value} from {names(who)}" for value, who in values[option].items())
    explanation = f"{head} because clients send different {option}: {sent}."
    pin = f" or force one with [serve.pin] num_ctx for {model}," if option == "num_ctx" else ""
    fix = (
        f"Send one {option} for {model} from every client,{pin} or use a Modelfile alias per "
        f"{option} value."
    )
    return _view("reload_bound", explanation, fix, r, numbers)


def queueing_text(r: Recent, share: float) -> VerdictView:
    """Rule 4's words: the model, and its lane-map row with the sources of its numbers."""
    host, model = Counter((q.host, q.model) for q in r.queueing).most_common(1)[0][0]
    fact = next((f for f in r.lane_facts if (f.host, f.model) == (host, model)), None)
    numbers: Numbers = {
        "upstream_wait_share": share,
        "upstream_wait_s": round(r.upstream_wait_ns / 1e9, 1),
    }
    head = f"Requests waited inside Ollama for a parallel slot {share:.0%} of lane time"
    if fact is None:
        explanation = f"{head}, for {model}."
        fix = (
            'Use lanes = "auto" so the proxy sends what Ollama runs, and send every client '
            "through the proxy."
        )
        return _view("upstream_queueing", explanation, fix, r, numbers)
    numbers |= {"lanes": fact.lanes, "ollama_lanes": fact.ollama_lanes}
    if fact.ollama_lanes < fact.lanes:
        explanation = (
            f"{head}: the proxy sends {model} up to {fact.lanes} at once ({fact.source}) but "
            f"Ollama runs it with {fact.ollama_lanes} ({fact.ollama_source})."
        )
        fix = 'Set lanes = "auto" so the proxy sends each model what Ollama runs'
        fix += (
            f" ({model} runs one at a time: {fact.ollama_source})."
            if fact.ollama_source.startswith("rule:")
            else f", or run OLLAMA_NUM_PARALLEL={fact.lanes} (`lanes install --lanes "
            f"{fact.lanes}`)."
        )
    else:
        explanation = (
            f"{head} although the proxy sends {model} at most {fact.lanes} at once "
            f"({fact.source}), what Ollama runs by the lane map ({fact.ollama_source})."
        )
        fix = (
            "Send every client through the proxy (another one reaches Ollama directly), or set "
            "num_parallel to the OLLAMA_NUM_PARALLEL Ollama really runs with."
        )
    return _view("upstream_queueing", explanation, fix, r, numbers)


def prefill_text(r: Recent, share: float) -> VerdictView:
    """Rule 5's words."""
    prefill_s, decode_s = r.prefill_ns / 1e9, r.decode_ns / 1e9
    explanation = (
        f"Prompt evaluation took {share:.0%} of Ollama's time on requests in {_window(r)} "
        f"({prefill_s:.1f} s prefill against {decode_s:.1f} s decode)."
    )
    fix = (
        "Send shorter prompts, or prompts that share a prefix: the static part (instructions, "
        "schema, examples) first and in the same order every time, so Ollama reuses its cache; "
        "the miner already puts the static part first."
    )
    numbers: Numbers = {
        "prefill_share": share,
        "prefill_s": round(prefill_s, 1),
        "decode_s": round(decode_s, 1),
    }
    return _view("prefill_bound", explanation, fix, r, numbers)


def _queue_numbers(r: Recent) -> Numbers:
    return {"busy_ratio": _busy(r), "waiting_share": _waiting(r), "depth": r.depth}


def lanes_bound_text(r: Recent, fact: LaneFact, more: int) -> VerdictView:
    """Rule 6's words: the model, its lanes, what Ollama runs, the knee, and the way up."""
    numbers = _queue_numbers(r) | {"lanes": fact.lanes, "ollama_lanes": fact.ollama_lanes}
    numbers |= {"knee": fact.knee} if fact.knee is not None else {}
    numbers["target_lanes"] = more
    sends = f"the proxy sends {fact.model} at most {fact.lanes} at once ({fact.source})"
    if fact.lanes < fact.ollama_lanes:
        runs = f"while Ollama runs it with {fact.ollama_lanes} ({fact.ollama_source})"
    else:
        runs = (
            f"as Ollama runs it ({fact.ollama_source}), while lanes tune measured more "
            f"throughput up to {fact.knee} at once"
        )
    explanation = f"{_queue(r)}, but {sends} {runs}."
    if more > fact.ollama_lanes:
        fix = (
            f"Run {more} at once: `lanes install --lanes {more}` sets OLLAMA_NUM_PARALLEL and "
            "the proxy's lanes together."
        )
    elif fact.cap is not None:
        fix = f'Raise lanes to {more}, or set lanes = "auto" to follow Ollama.'
    else:
        fix = f"Raise model_lanes for {fact.model} to {more}, or remove it to follow Ollama."
    return _view("lanes_bound", explanation, fix, r, numbers)


def ollama_bound_text(r: Recent) -> VerdictView:
    """Rule 7's words: what the proxy sends and Ollama runs, and how long the queue takes."""
    numbers = _queue_numbers(r) | {"lanes": r.lanes}
    rate = r.completed / r.window_s if r.window_s > 0 else 0.0
    numbers["completed_per_s"] = rate
    fact = max(r.lane_facts, key=lambda f: f.lanes, default=None)
    if fact is None:
        sends = f"the proxy sends its {r.lanes} lanes"
    else:
        numbers |= {"ollama_lanes": fact.ollama_lanes}
        numbers |= {"knee": fact.knee} if fact.knee is not None else {}
        knee = ", the knee lanes tune measured" if fact.knee is not None else ""
        if fact.lanes > fact.ollama_lanes:
            sends = (
                f"the proxy sends {fact.model} up to {fact.lanes} at once, more than Ollama runs "
                f"({fact.ollama_lanes}, {fact.ollama_source}{knee})"
            )
        else:
            sends = (
                f"the proxy already sends {fact.model} as many at once as Ollama runs "
                f"({fact.lanes}, {fact.ollama_source}{knee})"
            )
    if r.depth == 0:
        drain = "the queue is empty right now"
    elif rate <= 0:
        drain = f"nothing completed, so the queue of {r.depth} does not drain"
    else:
        numbers["drain_s"] = round(r.depth / rate, 1)
        within = f"about {r.depth / rate:.0f} s" if r.depth >= rate else "under a second"
        drain = f"at {rate:.2f} requests/s the queue of {r.depth} drains in {within}"
    explanation = f"{_queue(r)}, and {sends}; {drain}."
    fix = (
        "More lanes would not help: the GPU is the limit. Send less, use a smaller or more "
        "quantized model, or add another Ollama host."
    )
    if fact is not None and fact.knee is None:
        fix += " `lanes tune` measures whether more at once would help."
    return _view("ollama_bound", explanation, fix, r, numbers)


def client_bound_text(r: Recent) -> VerdictView:
    """Rule 8's words: how many requests the clients kept in flight, on how many lanes."""
    in_flight = r.busy_lane_s / r.window_s if r.window_s > 0 else 0.0
    explanation = (
        f"Nothing waits for a lane: the clients kept {in_flight:.1f} requests in flight on "
        f"average on {_lanes(r.lanes)} ({_busy(r):.0%} busy) in {_window(r)}."
    )
    fix = (
        "Send more at once: more concurrent requests, or more workers for the miner "
        "(`miner run --workers N`)."
    )
    numbers: Numbers = {
        "lanes": r.lanes,
        "in_flight": in_flight,
        "busy_ratio": _busy(r),
        "waiting_share": _waiting(r),
        "received": r.received,
    }
    return _view("client_bound", explanation, fix, r, numbers)
