"""The doctor's lane map (pure): each model's lanes on Ollama's host, and the conflicts in it.

The map is `proxy.lanes.lanemap.lanes_for` over what the doctor gathered: Ollama's
NUM_PARALLEL as its process has it, each model's `/api/show` capabilities and architecture,
and the proxy's settings. For every model it holds two numbers: the lanes the proxy sends at
once (its `lanes`, `model_lanes` and `num_parallel`) and the lanes Ollama runs it with (its
NUM_PARALLEL and the one-lane rules). Where the first is larger, the extra requests wait in
Ollama's hidden FIFO, out of the fair queue: that is a failure.

- `check_parallel` judges the host: NUM_PARALLEL against a hand-set `lanes` cap and the
  `num_parallel` setting (a cap above it fails; below it, the proxy is the limit: a warning).
- `check_lane_map` judges the models: `model_lanes` above what Ollama runs, and a hand-set
  cap above a model that Ollama runs with fewer lanes than NUM_PARALLEL (the one-lane rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.install.doctor_facts import DoctorFacts
from proxy.install.finding import Finding
from proxy.lanes.lanemap import ModelLanes, Parallel, lanes_for

__all__ = [
    "LaneMap",
    "LaneMapRow",
    "check_lane_map",
    "check_parallel",
    "lane_map",
    "proxy_cap",
    "render_lane_map",
    "used_parallel",
]

AUTO = '"auto"'


@dataclass(frozen=True)
class LaneMapRow:
    """One model: the lanes the proxy gives it and why, and the lanes Ollama runs it with."""

    model: str
    lanes: int
    source: str
    ollama_lanes: int
    ollama_source: str


@dataclass(frozen=True)
class LaneMap:
    """The lane map of Ollama's host as the doctor computes it."""

    upstream: str
    url: str
    cap: int | None  # a hand-set `lanes`; None: "auto"
    parallel: Parallel  # the NUM_PARALLEL the proxy uses
    rows: tuple[LaneMapRow, ...]


def proxy_cap(facts: DoctorFacts) -> int | None:
    """The hand-set `lanes` cap: the running proxy's (its /stats), else its settings'."""
    host = facts.proxy.host_for(facts.ollama.url) if facts.proxy.lanes is not None else None
    return host.cap if host is not None else facts.settings.cap


def used_parallel(facts: DoctorFacts) -> Parallel:
    """The NUM_PARALLEL the proxy uses: its `num_parallel` setting, else Ollama's as read."""
    configured = facts.settings.num_parallel
    if configured is None:
        return facts.parallel
    return Parallel(configured, "config", f"num_parallel = {configured} in {facts.settings.table}")


def _ollama_parallel(facts: DoctorFacts) -> Parallel:
    """The NUM_PARALLEL Ollama runs with: as read, else the best the settings know."""
    return facts.parallel if facts.parallel.value is not None else used_parallel(facts)


def _facts_of(facts: DoctorFacts, model: str) -> tuple[tuple[str, ...] | None, str | None]:
    found = facts.model_facts.get(model)
    return (None, None) if found is None else (found.capabilities, found.architecture)


def _sent(facts: DoctorFacts, model: str, cap: int | None) -> ModelLanes:
    """The lanes the proxy gives `model`: the map's, or with a cap, the user's."""
    override = facts.settings.model_lanes.get(model)
    if cap is not None:
        return ModelLanes(cap if override is None else min(override, cap), "config")
    capabilities, architecture = _facts_of(facts, model)
    return lanes_for(
        used_parallel(facts),
        capabilities=capabilities,
        architecture=architecture,
        override=override,
    )


def lane_map(facts: DoctorFacts) -> LaneMap:
    """Every model's lanes on Ollama's host, by name."""
    cap = proxy_cap(facts)
    ollama = _ollama_parallel(facts)
    rows = []
    for model in sorted(facts.model_names):
        capabilities, architecture = _facts_of(facts, model)
        runs = lanes_for(ollama, capabilities=capabilities, architecture=architecture)
        sent = _sent(facts, model, cap)
        rows.append(LaneMapRow(model, sent.lanes, sent.source, runs.lanes, runs.source))
    return LaneMap(
        facts.settings.upstream, facts.ollama.url, cap, used_parallel(facts), tuple(rows)
    )


def render_lane_map(view: LaneMap) -> list[str]:
    """The map as text: a heading, then one line per model (name, lanes, source)."""
    parallel = view.parallel
    value = "unknown, so 1" if parallel.value is None else str(parallel.value)
    mode = AUTO if view.cap is None else f"{view.cap} (set by hand)"
    lines = [
        f"lane map of {view.upstream} ({view.url}): lanes {mode}, "
        f"NUM_PARALLEL {value} ({parallel.source})"
    ]
    if not view.rows:
        lines.append("  (no models)")
    width = max((len(row.model) for row in view.rows), default=0)
    for row in view.rows:
        line = f"  {row.model:<{width}}  {row.lanes:>3}  {row.source}"
        if (row.lanes, row.source) != (row.ollama_lanes, row.ollama_source):
            line += f"  (Ollama runs {row.ollama_lanes}: {row.ollama_source})"
        lines.append(line)
    return lines


def _how(parallel: Parallel) -> str:
    """How NUM_PARALLEL was found, after "OLLAMA_NUM_PARALLEL": "from /proc/..." or a reason."""
    return parallel.detail if ": " in parallel.detail else f"from {parallel.detail}"


def _fix_lanes(lanes: int) -> str:
    return f"Run `lanes install --lanes {lanes}`, which sets both and restarts Ollama."


def _unknown(facts: DoctorFacts) -> Finding:
    configured = facts.settings.num_parallel
    if configured is not None:
        return Finding(
            "num_parallel",
            "ok",
            f"OLLAMA_NUM_PARALLEL cannot be read here ({facts.parallel.detail}); the proxy "
            f"uses num_parallel = {configured} from {facts.settings.table}.",
        )
    return Finding(
        "num_parallel",
        "warn",
        f"OLLAMA_NUM_PARALLEL in effect is unknown: {facts.parallel.detail}. The proxy "
        "assumes 1 and gives each model 1 lane.",
        f"Set num_parallel = N (Ollama's value) in {facts.settings.table} of the proxy's "
        "config file. Run `sudo lanes doctor` to read the Ollama process's environment.",
    )


def check_parallel(facts: DoctorFacts) -> Finding:
    """Ollama's NUM_PARALLEL against the proxy's `num_parallel` setting and a hand-set cap."""
    parallel = facts.parallel
    if parallel.value is None:
        return _unknown(facts)
    value, cap, configured = parallel.value, proxy_cap(facts), facts.settings.num_parallel
    said = (
        f"Ollama serves {value} request(s) at once per model (OLLAMA_NUM_PARALLEL {_how(parallel)})"
    )
    if configured is not None and configured != value:
        return Finding(
            "num_parallel",
            "fail" if configured > value else "warn",
            f"{said}, but the proxy's settings say num_parallel = {configured}.",
            f"Remove num_parallel from {facts.settings.table} (the proxy reads Ollama's value "
            f"itself here), or set it to {value}.",
        )
    if cap is None:
        return Finding(
            "num_parallel",
            "ok",
            f"{said}; the proxy follows NUM_PARALLEL = {value} from {used_parallel(facts).source}.",
        )
    if cap > value:
        return Finding(
            "num_parallel",
            "fail",
            f"{said}, but the proxy sends up to {cap} at once.",
            _fix_lanes(cap) + f" Or set the proxy's lanes to {AUTO}: it then follows NUM_PARALLEL.",
        )
    if cap < value:
        return Finding(
            "num_parallel",
            "warn",
            f"{said}, but the proxy sends up to {cap} at once: the proxy is the limit.",
            f"Set lanes = {AUTO} in {facts.settings.table}: each model then gets the lanes "
            "Ollama runs it with.",
        )
    return Finding("num_parallel", "ok", said + " and the proxy agrees.")


def _model_lanes_where(facts: DoctorFacts) -> str:
    table = facts.settings.table
    return "[serve.model_lanes]" if table == "[serve]" else f"model_lanes of {table}"


def _over_model_lanes(facts: DoctorFacts, row: LaneMapRow, cap: int | None) -> Finding:
    override = facts.settings.model_lanes[row.model]
    where, lanes = _model_lanes_where(facts), row.ollama_lanes
    fix = (
        f"Remove {row.model} from {where}, or lower it to {lanes}."
        if cap is None  # with a cap, a model without an entry gets the whole cap
        else f"Lower {row.model} to {lanes} in {where}."
    )
    return Finding(
        "lane_map",
        "fail",
        f"model_lanes gives {row.model} {override} lanes, but Ollama runs it with "
        f"{row.ollama_lanes} ({row.ollama_source}): the proxy sends it up to {row.lanes} at "
        "once and the extra requests wait inside Ollama, out of the fair queue.",
        fix,
    )


def _over_cap(facts: DoctorFacts, cap: int, rows: list[LaneMapRow]) -> Finding:
    named = ", ".join(f"{row.model} ({row.ollama_lanes}: {row.ollama_source})" for row in rows)
    lower = ", ".join(f'"{row.model}" = {row.ollama_lanes}' for row in rows)
    return Finding(
        "lane_map",
        "fail",
        f"lanes = {cap} (set by hand) is more than Ollama runs for {named}: the extra "
        "requests wait inside Ollama, out of the fair queue.",
        f"Set lanes = {AUTO} in {facts.settings.table}, or give those models their lanes in "
        f"{_model_lanes_where(facts)}: {lower}.",
    )


def check_lane_map(facts: DoctorFacts) -> list[Finding]:
    """The settings' load, `model_lanes` and a hand-set cap against what Ollama runs."""
    found: list[Finding] = []
    if facts.settings.error is not None:
        found.append(
            Finding(
                "settings",
                "fail",
                f"The proxy's settings do not load: {facts.settings.error}.",
                "Correct that setting; `lanes serve` does not start (or reload) with it.",
            )
        )
    view, ollama = lane_map(facts), _ollama_parallel(facts)
    over_cap = []
    for row in view.rows:
        if row.ollama_source == "assumed" or row.lanes <= row.ollama_lanes:
            continue
        override = facts.settings.model_lanes.get(row.model)
        if override is not None and override > row.ollama_lanes:
            found.append(_over_model_lanes(facts, row, view.cap))
        elif view.cap is not None and row.ollama_source != ollama.source:
            over_cap.append(row)  # a NUM_PARALLEL model: `check_parallel` judges the cap
    if over_cap and view.cap is not None:
        found.append(_over_cap(facts, view.cap, over_cap))
    if view.rows and not any(f.check == "lane_map" for f in found):
        count = len(view.rows)
        found.append(
            Finding(
                "lane_map",
                "ok",
                f"No model gets more lanes than Ollama runs it with ({count} model(s) mapped).",
            )
        )
    return found
