"""QueueViews: what a LaneQueue shows of its waiting tickets, read-only (queue rule 17)."""

from __future__ import annotations

from collections import OrderedDict

from proxy.lanes.hosts import HostTable
from proxy.lanes.projection import QueueSummary, Waiting, position, project
from proxy.lanes.ring import FairRing, HoldTime, Ticket
from proxy.lanes.service import ServiceCounters

__all__ = ["QueueViews"]


class QueueViews(HostTable):
    """The projected order, positions and ETAs of the queued tickets; `LaneQueue` builds on it
    and owns the state these read."""

    _ring: FairRing
    _service: ServiceCounters
    _hold: HoldTime
    _queued: OrderedDict[int, Ticket]
    _by_client: dict[str, int]

    @property
    def depth(self) -> int:
        """Queued tickets."""
        return len(self._queued)

    def wait_estimate_s(self) -> float:
        """Seconds until one more ticket would start, from the measured lane-hold time."""
        return self._hold.wait_s(self.depth, self.healthy_lanes())

    def waiting(self, limit: int | None = None) -> list[Waiting]:
        """Queued tickets in projected admission order with their ETAs (rule 17); all of them,
        or the first `limit`."""
        return project(self._ring, self._service, self._hold, self.healthy_lanes(), limit=limit)

    def summary(self, limit: int) -> QueueSummary:
        """The first `limit` rows of waiting(), the next client of each class, and per client
        its queued tickets and the oldest's submission time; O(limit + clients), not O(depth)."""
        oldest = self._ring.oldest_by_client()
        return QueueSummary(
            rows=self.waiting(limit),
            depth=self.depth,
            next_in_class=self._ring.next_clients(),
            clients={c: (n, oldest[c]) for c, n in self._by_client.items() if c in oldest},
        )

    def place(self, ticket: Ticket) -> Waiting | None:
        """A queued ticket's row in the projected order (rule 17); None if it is not queued."""
        if self._queued.get(ticket.id) is not ticket:
            return None
        lanes = self.healthy_lanes()
        return project(self._ring, self._service, self._hold, lanes, upto=ticket.id)[-1]

    def position(self, ticket: Ticket) -> int:
        """A queued ticket's projected position over all classes (1-based); 0 if not queued."""
        if self._queued.get(ticket.id) is not ticket:
            return 0
        return position(self._ring, self._service, ticket)
