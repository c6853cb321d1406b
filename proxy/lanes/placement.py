"""Host placement (pure): the `Host` picture of one Ollama server and `choose()`.

The rules live in the header of `proxy.lanes.queue`: a host's capacity is rule 6, its model
picture rule 7, `choose()` is rule 9 (placement order), lane numbers rule 13, health rule 14.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Sequence

__all__ = ["Host", "choose", "holders"]


class Host:
    """The lanes and the model picture of one upstream; all times are the caller's."""

    __slots__ = (
        "dispatched",
        "free",
        "healthy",
        "installed",
        "lanes",
        "loaded",
        "max_loaded",
        "model_lanes",
        "name",
        "running",
        "swaps",
        "weight",
    )

    def __init__(
        self,
        name: str,
        lanes: int,
        *,
        first_lane: int = 0,
        weight: float = 1.0,
        max_loaded: int = 3,
        model_lanes: dict[str, int] | None = None,
    ) -> None:
        if lanes < 1 or max_loaded < 1 or weight <= 0:
            raise ValueError("a host needs lanes >= 1, max_loaded >= 1 and weight > 0")
        self.name = name
        self.lanes = lanes
        self.weight = weight
        self.max_loaded = max_loaded
        self.model_lanes = dict(model_lanes or {})
        self.free = list(range(first_lane, first_lane + lanes))  # a heap of lane numbers
        self.running: dict[str, int] = {}  # model -> held lanes
        self.loaded: OrderedDict[str, None] = OrderedDict()  # least recently sent first
        self.installed: frozenset[str] | None = None  # None until /api/tags answered
        self.healthy = True
        self.swaps = 0
        self.dispatched = 0

    @property
    def busy(self) -> int:
        """Lanes held."""
        return self.lanes - len(self.free)

    def load(self) -> float:
        """Held lanes over lanes times weight."""
        return self.busy / (self.lanes * self.weight)

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
        """Lanes `model` may take now: free lanes within its own limit; 0 if unhealthy."""
        if not self.healthy:
            return 0
        free = len(self.free)
        cap = self.model_lanes.get(model)
        return free if cap is None else max(0, min(free, cap - self.running.get(model, 0)))

    def free_for(self, model: str) -> bool:
        """True if healthy with a free lane that the model's own limit allows."""
        return self.room_for(model) > 0

    def bind(self, model: str) -> int:
        """Take a lane for `model` (counting a swap if it evicts); returns the lane number."""
        lane = heapq.heappop(self.free)
        self.running[model] = self.running.get(model, 0) + 1
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
        heapq.heappush(self.free, lane)
        left = self.running.get(model, 0) - 1
        if left > 0:
            self.running[model] = left
        else:
            self.running.pop(model, None)

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
