"""Host placement (pure): the `Host` picture of one Ollama server and `choose()`.

The rules live in the header of `proxy.lanes.queue`: a host's capacity is rule 6 (with the
lane map of `proxy.lanes.lanemap`), its model picture rule 7, `choose()` is rule 9 (placement
order), lane numbers rule 13, health rule 14.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from proxy.lanes.lanemap import ModelLanes, Parallel, lanes_for

__all__ = ["Host", "choose", "holders"]


class Host:
    """The lanes and the model picture of one upstream; all times are the caller's.

    Two ways to count lanes (rule 6): with a hand-set `cap`, the host has `cap` lanes that all
    its models share (a model may have fewer by `overrides`, the `model_lanes` setting), as
    the user said; with `cap` None ("auto"), each model has the lanes the lane map gives it
    (`lanemap.lanes_for`: Ollama's NUM_PARALLEL and its one-lane rules), and at most
    `max_loaded` models run at once. Lanes are numbered per model, from 0 (rule 13).
    """

    __slots__ = (
        "_busy",
        "cap",
        "dispatched",
        "facts",
        "healthy",
        "installed",
        "loaded",
        "max_loaded",
        "name",
        "overrides",
        "parallel",
        "running",
        "slots",
        "swaps",
        "weight",
    )

    def __init__(
        self,
        name: str,
        cap: int | None = None,
        *,
        weight: float = 1.0,
        max_loaded: int = 3,
        overrides: Mapping[str, int] | None = None,
        parallel: Parallel | None = None,
    ) -> None:
        if (cap is not None and cap < 1) or max_loaded < 1 or weight <= 0:
            raise ValueError("a host needs lanes >= 1 (or auto), max_loaded >= 1, weight > 0")
        self.name = name
        self.cap = cap
        self.weight = weight
        self.max_loaded = max_loaded
        self.overrides = dict(overrides or {})
        self.parallel = parallel or Parallel.unknown("not read yet")
        self.facts: dict[str, tuple[tuple[str, ...], str | None]] = {}  # capabilities, arch
        self.running: dict[str, int] = {}  # model -> held lanes
        self._busy = 0  # sum of `running`, kept by bind and unbind
        self.slots: dict[str, set[int]] = {}  # model -> lane numbers held
        self.loaded: OrderedDict[str, None] = OrderedDict()  # least recently sent first
        self.installed: frozenset[str] | None = None  # None until /api/tags answered
        self.healthy = True
        self.swaps = 0
        self.dispatched = 0

    @property
    def busy(self) -> int:
        """Lanes held."""
        return self._busy

    def ollama_lanes(self, model: str) -> ModelLanes:
        """The lanes Ollama runs `model` with, by the lane map (the `model_lanes` override wins)."""
        facts = self.facts.get(model)
        return lanes_for(
            self.parallel,
            capabilities=None if facts is None else facts[0],
            architecture=None if facts is None else facts[1],
            override=self.overrides.get(model),
        )

    def lanes_of(self, model: str) -> ModelLanes:
        """The lanes the proxy gives `model` here: the map's, or with a cap, the user's."""
        if self.cap is None:
            return self.ollama_lanes(model)
        override = self.overrides.get(model)
        if override is not None:
            return ModelLanes(min(override, self.cap), "config")
        return ModelLanes(self.cap, "config")

    def capacity(self) -> int:
        """Lanes now: the cap; or the lanes of the models running or loaded (at most
        max_loaded, the most recent), or one model's worth when none is."""
        if self.cap is not None:
            return self.cap
        active = list(self.running) + [m for m in reversed(self.loaded) if m not in self.running]
        if not active:
            return self.parallel.value or 1
        return sum(
            self.lanes_of(m).lanes for m in active[: max(self.max_loaded, len(self.running))]
        )

    def load(self) -> float:
        """Held lanes over lanes times weight."""
        return self.busy / (self.capacity() * self.weight)

    def has(self, model: str) -> bool:
        """True if the model is installed, or nothing is known yet."""
        return self.installed is None or model in self.installed

    def warm(self, model: str) -> bool:
        """True if the model is loaded (as far as the proxy knows)."""
        return model in self.loaded

    def evicts(self, model: str) -> bool:
        """True if sending `model` here now would unload another model."""
        return model not in self.loaded and len(self.loaded) >= self.max_loaded

    def room_for(self, model: str) -> int:
        """Requests for `model` this host could start now (rule 6); 0 if unhealthy."""
        if not self.healthy:
            return 0
        held = self.running.get(model, 0)
        room = self.lanes_of(model).lanes - held
        if self.cap is not None:
            room = min(room, self.cap - self.busy)
        elif not held and len(self.running) >= self.max_loaded:
            room = 0  # max_loaded other models run: Ollama would hold this one back
        return max(0, room)

    def free_for(self, model: str) -> bool:
        """True if healthy with a free lane that the model may use."""
        return self.room_for(model) > 0

    def open(self) -> bool:
        """True if some model could start here now (a quick check before the real one)."""
        if not self.healthy:
            return False
        if self.cap is not None:
            return self.busy < self.cap
        if len(self.running) < self.max_loaded:
            return True
        return any(n < self.lanes_of(m).lanes for m, n in self.running.items())

    def spare(self) -> int:
        """Lanes free now, as far as they can be told apart from models: capacity - busy."""
        return max(0, self.capacity() - self.busy) if self.healthy else 0

    def bind(self, model: str) -> int:
        """Take a lane for `model` (counting a swap if it evicts); returns its lane number."""
        held = self.slots.setdefault(model, set())
        lane = next(n for n in range(len(held) + 1) if n not in held)
        held.add(lane)
        self.running[model] = self.running.get(model, 0) + 1
        self._busy += 1
        self.dispatched += 1
        if model not in self.loaded:
            if len(self.loaded) >= self.max_loaded:
                self.swaps += 1
                self._evict_one()
            self.loaded[model] = None
        self.loaded.move_to_end(model)
        return lane

    def unbind(self, model: str, lane: int) -> None:
        """Give back a lane taken by `bind`."""
        held = self.slots.get(model)
        if held is not None:
            held.discard(lane)
            if not held:
                del self.slots[model]
        held_lanes = self.running.get(model, 0)
        if held_lanes > 1:
            self.running[model] = held_lanes - 1
        else:
            self.running.pop(model, None)
        self._busy -= min(1, held_lanes)

    def observe_installed(self, models: Iterable[str]) -> None:
        """Replace the installed set by `/api/tags`."""
        self.installed = frozenset(models)

    def observe_loaded(self, models: Iterable[str]) -> None:
        """Replace the loaded set by `/api/ps`; models running here stay (they may be loading)."""
        seen = set(models) | set(self.running)
        for name in [m for m in self.loaded if m not in seen]:
            del self.loaded[name]
        for name in sorted(seen - set(self.loaded)):
            self.loaded[name] = None
            self.loaded.move_to_end(name, last=False)  # unknown recency: oldest
        while len(self.loaded) > self.max_loaded:  # a swap in progress shows both models
            self._evict_one()

    def _evict_one(self) -> None:
        idle = next((m for m in self.loaded if m not in self.running), None)
        del self.loaded[idle if idle is not None else next(iter(self.loaded))]


def holders(hosts: Sequence[Host], model: str) -> list[Host]:
    """Healthy hosts with the model installed (queue rule 9b)."""
    return [h for h in hosts if h.healthy and h.installed is not None and model in h.installed]


def choose(
    hosts: Sequence[Host], model: str, *, avoid: frozenset[str] = frozenset(), turn: int = 0
) -> Host | None:
    """The host for one request for `model` now, or None if none can take it (queue rule 9)."""
    if len(hosts) == 1:  # every step below keeps or drops this one host by the same tests
        only = hosts[0]
        fits = only.healthy and only.name not in avoid and only.free_for(model)
        return only if fits else None
    candidates = [h for h in hosts if h.healthy and h.name not in avoid]
    having = [h for h in candidates if h.installed is not None and model in h.installed]
    if having:
        candidates = having
    elif any(h.installed is None for h in candidates):
        candidates = [h for h in candidates if h.installed is None] or candidates
    free = [h for h in candidates if h.free_for(model)]
    if not free:
        return None
    best_tier = min(_tier(h, model) for h in free)
    tier = [h for h in free if _tier(h, model) == best_tier]
    least = min(h.load() for h in tier)
    tied = [h for h in tier if h.load() == least]
    return tied[turn % len(tied)]


def _tier(host: Host, model: str) -> int:
    if host.warm(model):
        return 0
    return 2 if host.evicts(model) else 1
