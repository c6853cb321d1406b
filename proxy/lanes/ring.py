"""The fair ring: priority classes, client turns and aging (rules 3-5 of `proxy.lanes.queue`)."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from proxy.lanes.service import ServiceCounters

__all__ = ["CLASSES", "RANK", "FairRing", "HoldTime", "Ticket", "TicketState"]

CLASSES: tuple[str, ...] = ("interactive", "normal", "batch")
RANK: Mapping[str, int] = MappingProxyType({name: rank for rank, name in enumerate(CLASSES)})


class TicketState(Enum):
    """Where a ticket is in its life (queue rule 2)."""

    QUEUED = "queued"
    ADMITTED = "admitted"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(eq=False, slots=True)
class Ticket:
    """One request waiting for, or holding, a lane; `upstream` is "" until it is bound."""

    id: int
    client: str
    priority: str  # the class asked for; `rank` is the class it is in now (after aging)
    model: str
    enqueued_at: float
    avoid: frozenset[str] = frozenset()  # hosts it must not be bound to (a failed attempt)
    state: TicketState = TicketState.QUEUED
    upstream: str = ""
    lane: int | None = None
    admitted_at: float | None = None
    rank: int = field(default=0, repr=False)
    entered_at: float = field(default=0.0, repr=False)  # when it joined `rank`
    prompt_tokens: int = 0  # estimated at submit, settled from the answer
    output_tokens: int = 0  # streamed so far, settled from the answer
    charged: float = 0.0  # service units charged to its client for it (rule 4)


class HoldTime:
    """How long a lane is held, as a moving average; it prices a wait for `Retry-After`."""

    ALPHA = 0.2  # weight of the newest lane-hold time in the moving average
    DEFAULT_S = 1.0  # assumed lane-hold time until one has been measured

    __slots__ = ("mean_s",)

    def __init__(self) -> None:
        self.mean_s: float | None = None

    def add(self, admitted_at: float, now: float) -> None:
        """One lane was held from `admitted_at` until `now`."""
        held = max(0.0, now - admitted_at)
        mean = self.mean_s
        self.mean_s = held if mean is None else mean + self.ALPHA * (held - mean)

    def wait_s(self, ahead: int, lanes: int) -> float:
        """Seconds until one more ticket would start, with `ahead` queued before it."""
        hold = self.DEFAULT_S if self.mean_s is None else self.mean_s
        return (ahead + 1) / lanes * hold


class FairRing:
    """Queued tickets in fair order: which one is next, and the turns of the client keys.

    Each class (`CLASSES`, best first) holds a ring of client keys, an insertion-ordered map
    from a client key to that client's FIFO of tickets in the class. The head of the ring is
    the first client of the best class that has tickets; its oldest ticket there is `head()`.

    How the ring pointer moves (the tie-break between clients):

    - `pop()` takes the head and ends its client's turn: the client moves to the tail of its
      class's ring if it still has tickets there, else it drops out of the ring. Rotating the
      map instead of walking a cursor keeps the order a plain queue of clients (the one served
      longest ago goes next) and every step O(1).
    - A client that is not in a class's ring (none of its tickets is in that class) joins at
      the tail when a ticket of it enters the class, by `join()` or by aging. It does not get
      back an old place: leaving and coming back costs the turns of everyone already waiting.
    - `leave()` takes a ticket out of turn (cancelled, or bound by bypass or affinity while
      another ticket is the head) and moves no client: the client keeps its place, and drops
      out only when it has no ticket left in the class. Work handed out of turn fills a lane
      the head could not (or should not yet) take; charging it as a turn would penalise a
      client for a placement accident.

    So with k clients in a class a newcomer's first ticket is at most k - 1 turns away, however
    many tickets the others have queued, and no client gets a second turn in a class before
    every other client waiting there has had one.

    With a `tokens` service (`ServiceCounters`), the turn goes instead to the client with the
    lowest service counter among those in the class ring, ties in ring order (so equal
    counters still take turns); a client that was idle (`join(lift=True)`) is first lifted to
    the lowest counter of the clients already there. `pop()` still moves the client to the tail.

    Aging (`age()`): a ticket that entered its class `aging_s` ago or more moves up one class,
    at the tail of its client's FIFO there; with a `tokens` service the clock starts again each
    time the class gets a lane (`served()`), so only a class starved by those above it ages.
    A moved ticket counts as having entered the new class at its due time, or at the latest
    entry into that class if that is later, so each class's entry log stays in time order and
    `age()` only ever looks at the front of it. Tickets promote in the order they entered
    (batch before normal, so a long-waiting batch ticket can climb two classes in one call).

    Removal is by tombstone: a ticket that leaves stays in its client's deque and is dropped
    when it reaches the front (`skipped` counts these). Every operation is O(1) amortised.
    """

    __slots__ = ("_aging_s", "_entered", "_live", "_rings", "_served_at", "_service", "skipped")

    def __init__(self, aging_s: float, service: ServiceCounters | None = None) -> None:
        self._aging_s = aging_s
        self._service = service
        self._served_at = [float("-inf")] * len(CLASSES)  # when each class last got a lane
        self._rings = tuple(OrderedDict[str, deque[Ticket]]() for _ in CLASSES)
        self._live = tuple(dict[str, int]() for _ in CLASSES)  # live tickets per client
        self._entered = tuple(OrderedDict[int, Ticket]() for _ in CLASSES)  # in entry order
        self.skipped = 0  # tombstones dropped so far: at most one per ticket per class it left

    def __len__(self) -> int:
        return sum(len(entered) for entered in self._entered)

    def sizes(self) -> tuple[int, ...]:
        """Tickets in each class now (after aging), best class first."""
        return tuple(len(entered) for entered in self._entered)

    def turns(self, rank: int) -> tuple[str, ...]:
        """The client keys of class `rank` in turn order (O(clients); for tests and views)."""
        return tuple(self._rings[rank])

    def join(self, ticket: Ticket, rank: int, at: float, *, lift: bool = False) -> None:
        """`ticket` enters class `rank` at time `at`, behind its client's other tickets there;
        `lift`: its client was idle until now (rule 4's lift, with a `tokens` service)."""
        ticket.rank, ticket.entered_at = rank, at
        self._entered[rank][ticket.id] = ticket
        ring = self._rings[rank]
        fifo = ring.get(ticket.client)
        if fifo is None:
            if lift and self._service is not None:
                self._service.lift(ticket.client, ring)
            fifo = ring[ticket.client] = deque()
        fifo.append(ticket)
        live = self._live[rank]
        live[ticket.client] = live.get(ticket.client, 0) + 1

    def leave(self, ticket: Ticket) -> None:
        """Take `ticket` out of its class without ending its client's turn."""
        rank = ticket.rank
        del self._entered[rank][ticket.id]
        live = self._live[rank]
        left = live[ticket.client] - 1
        if left:
            live[ticket.client] = left
        else:
            del live[ticket.client]
            del self._rings[rank][ticket.client]

    def head(self) -> Ticket | None:
        """The ticket whose turn it is, or None if the ring is empty."""
        for rank, ring in enumerate(self._rings):
            if not ring:
                continue
            fifo = ring[self._next_client(ring)]
            entered = self._entered[rank]
            while entered.get(fifo[0].id) is not fifo[0]:
                fifo.popleft()  # a tombstone: the ticket left this class
                self.skipped += 1
            return fifo[0]
        return None

    def _next_client(self, ring: OrderedDict[str, deque[Ticket]]) -> str:
        """The client whose turn it is in a non-empty class ring: the first in ring order, or
        with a `tokens` service, the first with the lowest counter (ties in ring order)."""
        service = self._service
        if service is not None and service.by_tokens:
            lowest = service.lowest(ring)
            assert lowest is not None
            return lowest
        return next(iter(ring))

    def next_clients(self) -> dict[str, str]:
        """Per non-empty class, the client whose turn it is there (O(clients))."""
        return {
            CLASSES[rank]: self._next_client(ring) for rank, ring in enumerate(self._rings) if ring
        }

    def oldest_by_client(self) -> dict[str, float]:
        """Per client, when its oldest queued ticket was submitted (O(clients x classes))."""
        oldest: dict[str, float] = {}
        for rank, ring in enumerate(self._rings):
            entered = self._entered[rank]
            for client, fifo in ring.items():
                first = next(t for t in fifo if entered.get(t.id) is t)
                at = oldest.get(client)
                oldest[client] = first.enqueued_at if at is None else min(at, first.enqueued_at)
        return oldest

    def counts(self, rank: int) -> list[tuple[str, int]]:
        """Class `rank`'s clients in ring order, each with its live ticket count (O(clients))."""
        live = self._live[rank]
        return [(client, live[client]) for client in self._rings[rank]]

    def last_place(self, ticket: Ticket) -> int | None:
        """When `ticket` is its client's newest in its class (an arrival is), its place among
        that client's tickets there, 1-based, in O(1); None otherwise."""
        fifo = self._rings[ticket.rank].get(ticket.client)
        if not fifo or fifo[-1] is not ticket or ticket.id not in self._entered[ticket.rank]:
            return None
        return self._live[ticket.rank][ticket.client]

    def live(self, rank: int) -> list[tuple[str, list[Ticket]]]:
        """Class `rank`'s clients in ring order, each with its queued tickets there, oldest
        first (O(tickets in the class); for projections and views)."""
        entered = self._entered[rank]
        return [
            (client, [t for t in fifo if entered.get(t.id) is t])
            for client, fifo in self._rings[rank].items()
        ]

    def served(self, rank: int, now: float) -> None:
        """A ticket of class `rank` got a lane at `now` (for aging by `tokens`)."""
        self._served_at[rank] = now

    def pop(self) -> Ticket:
        """Take the head; its client's turn ends (it moves to the tail of its class)."""
        ticket = self.head()
        if ticket is None:
            raise IndexError("pop from an empty ring")
        ring = self._rings[ticket.rank]
        ring[ticket.client].popleft()
        self.leave(ticket)
        if ticket.client in ring:
            ring.move_to_end(ticket.client)
        return ticket

    def age(self, now: float) -> None:
        """Move every ticket that is due up one class (see the class docstring)."""
        service = self._service
        by_tokens = service is not None and service.by_tokens
        for rank in range(len(CLASSES) - 1, 0, -1):
            entered, upper = self._entered[rank], self._entered[rank - 1]
            served_at = self._served_at[rank] if by_tokens else float("-inf")
            while entered:
                ticket = next(iter(entered.values()))
                due = max(ticket.entered_at, served_at) + self._aging_s
                if now < due:
                    break
                self.leave(ticket)
                tail = next(reversed(upper.values())).entered_at if upper else due
                self.join(ticket, rank - 1, max(due, tail))
