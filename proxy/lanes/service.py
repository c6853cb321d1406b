"""Service counters: each client's weighted service so far, for fair share by work (rule 4)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from proxy.lanes.records import SchedulerError

__all__ = ["POLICIES", "Fairness", "ServiceCounters"]

Policy = Literal["tokens", "requests"]
POLICIES: tuple[Policy, ...] = ("tokens", "requests")
REBASE_ABOVE = float(2**30)  # counters this large are shifted down (exact in a float)


@dataclass(frozen=True, slots=True)
class Fairness:
    """How turns are shared inside a class: by served tokens (the default) or by requests."""

    policy: Policy = "tokens"
    w_in: float = 1.0  # cost of one prompt token
    w_out: float = 2.0  # cost of one output token
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    forget_s: float = 300.0  # a client idle this long loses its counter
    rebase_above: float = REBASE_ABOVE

    def __post_init__(self) -> None:
        if self.policy not in POLICIES or self.w_in < 0 or self.w_out < 0:
            raise SchedulerError("fairness: policy tokens or requests, and weights >= 0")
        if any(w <= 0 for w in self.weights.values()):
            raise SchedulerError("fairness: every client weight must be above 0")

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        """Weighted service units of a request: w_in x prompt + w_out x output."""
        return self.w_in * prompt_tokens + self.w_out * output_tokens


class ServiceCounters:
    """Per-client counters of weighted service, each grown by charge / the client's weight.

    A client *holds* while it has a ticket queued or running here; one that holds nothing for
    `forget_s` (by the queue's clock) is forgotten. Counters only move by `charge`, `lift` and
    `rebase`, so a client's order among the others changes only when it is served.
    """

    __slots__ = ("_counters", "_held", "_idle_since", "_mean_output", "fairness")

    def __init__(self, fairness: Fairness) -> None:
        self.fairness = fairness
        self._counters: dict[str, float] = {}
        self._held: dict[str, int] = {}  # tickets queued or running, per client
        self._idle_since: OrderedDict[str, float] = OrderedDict()  # in the order they went idle
        self._mean_output: dict[str, float] = {}  # output tokens per request, moving mean

    @property
    def by_tokens(self) -> bool:
        """True when the class order follows the counters (policy `tokens`)."""
        return self.fairness.policy == "tokens"

    def counter(self, client: str) -> float:
        """The client's counter (0 for a client not seen or forgotten)."""
        return self._counters.get(client, 0.0)

    def counters(self) -> dict[str, float]:
        """Every remembered counter (O(clients); for snapshots)."""
        return dict(self._counters)

    def weight(self, client: str) -> float:
        """The client's share weight (`client_weights`, else 1)."""
        return self.fairness.weights.get(client, 1.0)

    def hold(self, client: str) -> bool:
        """The client has one more ticket queued or running; True if it held none before."""
        before = self._held.get(client, 0)
        self._held[client] = before + 1
        self._idle_since.pop(client, None)
        self._counters.setdefault(client, 0.0)
        return before == 0

    def release(self, client: str, now: float) -> None:
        """One of the client's tickets finished or left; it may be idle from `now` on."""
        left = self._held.get(client, 0) - 1
        if left > 0:
            self._held[client] = left
            return
        self._held.pop(client, None)
        self._idle_since[client] = now

    def forget(self, now: float) -> None:
        """Drop the counters of clients idle for `forget_s` or more (oldest idle first)."""
        limit = self.fairness.forget_s
        while self._idle_since:
            client, since = next(iter(self._idle_since.items()))
            if now - since < limit:
                return
            del self._idle_since[client]
            self._counters.pop(client, None)
            self._mean_output.pop(client, None)

    def lift(self, client: str, others: Iterable[str]) -> None:
        """`client` became active in a class where `others` wait: no credit for idleness."""
        floor = min((self.counter(c) for c in others if c != client), default=None)
        if floor is not None and self.counter(client) < floor:
            self._counters[client] = floor

    def lowest(self, clients: Iterable[str]) -> str | None:
        """The first of `clients` (in their order) with the lowest counter."""
        best, best_value = None, 0.0
        for client in clients:
            value = self.counter(client)
            if best is None or value < best_value:
                best, best_value = client, value
        return best

    def charge(self, client: str, units: float) -> None:
        """Add `units` of service (negative: a refund) to the client, divided by its weight."""
        if client not in self._counters:
            return  # forgotten (idle too long): a late settlement must not bring it back
        value = self.counter(client) + units / self.weight(client)
        self._counters[client] = max(0.0, value)
        if value > self.fairness.rebase_above:
            self._rebase()

    def settle(
        self, client: str, charged: float, prompt_tokens: int, output_tokens: int, *, final: bool
    ) -> float:
        """Charge `client` the change from `charged` to the cost of these counts; returns the
        new cost. `final`: the counts are Ollama's own; the output joins the client's mean."""
        cost = self.fairness.cost(prompt_tokens, output_tokens)
        self.charge(client, cost - charged)
        if final:
            mean = self._mean_output.get(client)
            step = float(output_tokens) if mean is None else 0.2 * (output_tokens - mean)
            self._mean_output[client] = (mean or 0.0) + step
        return cost

    def estimate(self, client: str, prompt_tokens: int) -> float:
        """Expected units of a request not yet run: its prompt, plus the client's usual output."""
        output = round(self._mean_output.get(client, 0.0))
        return self.fairness.cost(prompt_tokens, output) / self.weight(client)

    def _rebase(self) -> None:
        """When every holding client is above `rebase_above`, shift all counters down by the
        lowest of them; order and differences among holders stay the same."""
        if not self._held:
            return
        low = min(self.counter(c) for c in self._held)
        if low <= self.fairness.rebase_above:
            return
        self._counters = {c: max(0.0, v - low) for c, v in self._counters.items()}
