"""The backlog: queued tickets by model, oldest first, for late binding (queue rules 10, 11, 16)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import KeysView

from proxy.lanes.ring import Ticket

__all__ = ["Backlog"]


class _Model:
    """One model's queued tickets. Tickets with an avoid set (retries: rare) are kept apart."""

    __slots__ = ("avoided", "avoiding", "plain")

    def __init__(self) -> None:
        self.plain: OrderedDict[int, Ticket] = OrderedDict()  # no avoid set, oldest first
        self.avoiding: OrderedDict[int, Ticket] = OrderedDict()  # with an avoid set
        self.avoided: Counter[str] = Counter()  # host -> queued tickets that avoid it

    def __len__(self) -> int:
        return len(self.plain) + len(self.avoiding)


class Backlog:
    """Per-model sub-queues: the oldest ticket a host may take in O(1) (plus the rare retries).

    Removal is O(1) (insertion-ordered maps, no tombstones), so a cancelled ticket costs
    nothing later; `live` and `avoiding` let the queue count a host's work without a scan.
    """

    __slots__ = ("_models",)

    def __init__(self) -> None:
        self._models: dict[str, _Model] = {}

    def models(self) -> KeysView[str]:
        """The models that have queued tickets."""
        return self._models.keys()

    def add(self, ticket: Ticket) -> None:
        """Queue `ticket` behind the other tickets for its model."""
        entry = self._models.get(ticket.model)
        if entry is None:
            entry = self._models[ticket.model] = _Model()
        if ticket.avoid:
            entry.avoiding[ticket.id] = ticket
            entry.avoided.update(ticket.avoid)
        else:
            entry.plain[ticket.id] = ticket

    def remove(self, ticket: Ticket) -> None:
        """Forget a queued ticket."""
        entry = self._models[ticket.model]
        if ticket.avoid:
            del entry.avoiding[ticket.id]
            entry.avoided.subtract(ticket.avoid)
            for name in ticket.avoid:
                if not entry.avoided[name]:
                    del entry.avoided[name]
        else:
            del entry.plain[ticket.id]
        if not entry:
            del self._models[ticket.model]

    def live(self, model: str) -> int:
        """Queued tickets for `model`."""
        entry = self._models.get(model)
        return 0 if entry is None else len(entry)

    def avoiding(self, model: str, host: str) -> int:
        """Queued tickets for `model` that must not go to `host`."""
        entry = self._models.get(model)
        return 0 if entry is None else entry.avoided[host]

    def oldest_for(self, model: str, host: str) -> Ticket | None:
        """The oldest queued ticket for `model` that may go to `host`, or None."""
        entry = self._models.get(model)
        if entry is None:
            return None
        plain = next(iter(entry.plain.values()), None)
        for ticket in entry.avoiding.values():  # oldest first; only those older than `plain`
            if plain is not None and ticket.id > plain.id:
                break
            if host not in ticket.avoid:
                return ticket
        return plain
