"""LaneQueue: the one queue; fair, late-bound admission of tickets onto the lanes of hosts.

Rules. Everything that decides who gets a lane is stated here. `ring.FairRing` implements
rules 3-5 (with `service.ServiceCounters` for rule 4's counters), `placement` rules 6, 7, 9
and 13, `detours` rules 10 and 11 (over `backlog.Backlog`, rule 16), and `projection` rule 17.

1. Purity. No I/O, no asyncio, no clock, no logging. Every call that needs the time takes
   `now` (any monotonic seconds, read by the caller); times are only subtracted and compared.
2. Life cycle. A ticket goes QUEUED -> ADMITTED -> FINISHED, or QUEUED -> CANCELLED (client
   left, wait limit, drain). Any other call raises `SchedulerError` and changes nothing:
   finish() of a ticket this queue has not admitted, cancel() of one it does not hold queued,
   submit() with an unknown priority, a host call naming an unknown host, a bad construction.
   Every check runs before the first mutation.
3. Classes. The best non-empty class goes first: interactive, then normal, then batch.
4. Turns inside a class, by `fairness` (`service.Fairness`). `requests`: the client keys with
   queued tickets form a ring; the client at the head gives its oldest ticket and moves to the
   tail if it has more; an absent client joins at the tail. So a newcomer waits at most one
   turn per other client in its class. `tokens` (the default): each client key has a service
   counter. Binding a ticket charges its client w_in x its estimated prompt tokens; charge()
   adds the live output tokens x w_out while it runs and settles both from the answer; each
   charge is divided by the client's weight (`client_weights`, default 1). The next ticket in
   a class is the oldest of the waiting client with the lowest counter, ties in ring order.
   A client that had no ticket queued or running is lifted, on its next submit, to the lowest
   counter of the clients waiting in that class (idleness banks no credit; a client whose
   requests are still running is not idle and is not lifted). Counters shift down when every
   client holding a ticket is above 2^30; a client holding none for 10 x aging_s is forgotten.
   Tickets handed out of turn (rules 10, 11) keep the ring order, and are charged all the same.
5. Aging. When admit(now) runs, a ticket that has spent `aging_s` in its class moves up one
   class and joins its client's turn there (at the tail of that client's own FIFO); with
   `tokens`, only while its class got no lane for `aging_s` (the ticket is due `aging_s` after
   it entered or the class last got a lane, whichever is later): aging protects a class from
   the classes above it, and fair share already bounds waits inside a class. Tickets move in
   the order they entered their class; a moved ticket counts as entering the upper class at
   its due time, or at that class's latest entry if later. A batch ticket under endless
   interactive load is interactive after about 2 x aging_s, so nothing starves.
6. Capacity. Lanes belong to a host, counted one of two ways. With `lanes` set by hand (a
   cap), the host holds at most `cap` admitted tickets, and model m at most `model_lanes[m]`:
   what the user said. With `lanes = "auto"` (the default), model m holds at most its lanes
   in the lane map (`lanemap.lanes_for`: `model_lanes[m]`, else 1 for embedding models and the
   one-lane architectures, else the host's NUM_PARALLEL; 1 while unknown), and at most
   `max_loaded` models hold lanes at once. Capacity is the cap, or the lanes of the models
   running or loaded (at most `max_loaded`), or one model's worth when none is.
7. Model picture. A host knows what it has installed (`/api/tags`; unknown until answered) and
   loaded (`/api/ps`, plus what was bound there, most recent last). Binding a model that is not
   loaded onto a host with `max_loaded` models loaded evicts one (the least recently bound that
   holds no lane, else the least recently bound) and counts a swap. `/api/ps` replaces the
   loaded set, except that models holding lanes there stay (they may be loading).
8. Late binding. A ticket names a model, not a host; it is bound to a host and a lane only when
   admit() finds a lane for it. admit() binds the fair head (rules 3-5) to the host rule 9
   picks, again and again, until no healthy host has a free lane or nothing more can be bound.
9. Placement order (`placement.choose`): (a) healthy hosts not in the ticket's avoid set;
   (b) if some have the model installed, only those; else if some have not answered
   `/api/tags` yet, only those; else all of them (Ollama will answer 404); (c) only hosts with
   a free lane the model may use (rule 6); (d) warm (model loaded) before cold with room to
   load before cold that would evict; (e) the least loaded: held lanes / (lanes x weight);
   (f) ties go round-robin on a counter that every binding advances.
10. Bypass. A host *may serve* a ticket if it is healthy, the ticket does not avoid it, and the
   model is installed there, or nothing is known of its models, or no healthy host has the
   model installed. If no host can take the head (rule 9), the first healthy host with a free
   lane (in the configured order) that can start something takes, within rule 6 and never a
   ticket that avoids it, the oldest ticket for a model loaded there, else the oldest ticket
   it may serve. One ticket per step, then the head is tried again. The head keeps its place;
   the bypassing ticket's client keeps its turn. So after admit() no host has a free lane for
   a ticket it may serve.
11. Affinity. If binding the head would evict a model loaded on its host while tickets for a
   model loaded there wait, the oldest of those goes to that host instead (out of turn, as in
   rule 10), for at most `affinity_wait_s` from the first deferral on that host; then the swap
   happens. So a swap happens about once per batch of a model, not once per request.
12. Queue bound. submit() raises `Overflow` (depth and wait estimate) when the free lanes of
   healthy hosts are no more than the queued tickets and `max_queue` tickets already wait:
   `max_queue` bounds waiting, not running. The estimate is (depth + 1) / lanes x the moving
   mean lane-hold time (`HoldTime`), lanes counting healthy hosts (all, if none is healthy).
13. Lane numbering. A model's lanes on a host are numbered from 0; a binding takes the lowest
   number that model does not hold there.
14. Health and change. An unhealthy host gets no new ticket; tickets already bound there run
   to finish(). Hosts change only through set_health(), observe_host(), observe_parallel(),
   observe_model() and configure_host(); a change never touches running tickets.
15. Snapshot. Per host: lanes, busy, healthy, `eligible` (queued tickets it may serve, rule 10),
   `runnable` (how many of those it could start now within rule 6; 0 everywhere right after
   admit(), by rule 10) and a row per model that runs, is loaded, waits or is set by hand.
16. Cost. submit, cancel, finish and charge are O(1) amortised (plus O(hosts) for the queue
   bound); each admitted ticket costs at most O(hosts x models queued), plus O(clients in its
   class) with `tokens`; snapshot() is O(clients + models queued x hosts), never O(tickets).
17. Projection. waiting(), place() and summary() project the admission order if nothing else
   arrived (summary() and place() stop early, so a view of a deep queue is not O(depth)):
   classes best first, each by its policy with each ticket's estimated cost (prompt estimate
   and its client's mean output). A ticket's estimated start is (tickets ahead + 1) / lanes x
   the mean lane-hold time. Model limits (rule 6) and bypass (rule 10) can start some sooner.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from proxy.lanes.backlog import Backlog
from proxy.lanes.detours import Detours
from proxy.lanes.placement import Host, choose
from proxy.lanes.projection import Waiting
from proxy.lanes.records import Overflow, SchedulerError
from proxy.lanes.ring import CLASSES, RANK, FairRing, HoldTime, Ticket, TicketState
from proxy.lanes.service import Fairness, ServiceCounters
from proxy.lanes.snapshot import HostSnapshot, QueueSnapshot, host_snapshot
from proxy.lanes.views import QueueViews

__all__ = [
    "Fairness",
    "HostSnapshot",
    "LaneQueue",
    "Overflow",
    "QueueSnapshot",
    "SchedulerError",
    "Waiting",
]


class LaneQueue(QueueViews):
    """Fair admission with late binding onto hosts; the module docstring states the rules."""

    def __init__(
        self,
        hosts: Sequence[Host],
        *,
        max_queue: int,
        aging_s: float,
        affinity_wait_s: float,
        fairness: Fairness | None = None,
    ) -> None:
        super().__init__(hosts)
        if max_queue < 0 or aging_s <= 0 or affinity_wait_s < 0:
            raise SchedulerError("max_queue and affinity_wait_s must be >= 0 and aging_s > 0")
        self._service = ServiceCounters(fairness or Fairness(forget_s=10 * aging_s))
        self._ring = FairRing(aging_s, self._service)
        self._backlog = Backlog()
        self._queued: OrderedDict[int, Ticket] = OrderedDict()  # in submission order
        self._running: dict[int, Ticket] = {}
        self._max_queue = max_queue
        self._detours = Detours(self.hosts, self._backlog, affinity_wait_s)
        self._next_id = 0
        self._turn = 0
        self._by_class = dict.fromkeys(CLASSES, 0)
        self._by_client: dict[str, int] = {}
        self._hold = HoldTime()
        self._now = 0.0  # the latest `now` a call passed

    @property
    def busy(self) -> int:
        """Admitted tickets over all hosts."""
        return len(self._running)

    @property
    def service(self) -> ServiceCounters:
        """The clients' service counters (read them; only the queue changes them)."""
        return self._service

    @property
    def ring(self) -> FairRing:
        """The fair ring of the queued tickets (read it; only the queue changes it)."""
        return self._ring

    def submit(
        self,
        client: str,
        priority: str,
        now: float,
        *,
        model: str = "",
        avoid: Iterable[str] = (),
        prompt_tokens: int = 0,
        at_once: bool = False,
    ) -> Ticket:
        """Queue a ticket for `model` (`prompt_tokens`: an estimate); `admit()` binds it.

        `at_once` (an arrival that admit(now) follows at once): with nothing queued, admit()
        would bind this ticket first, to the host choose() picks, with no other ticket to
        detour to; that binding is made here instead, without a pass through the ring.
        """
        rank = RANK.get(priority)
        if rank is None:
            raise SchedulerError(f"unknown priority {priority!r}; expected one of {CLASSES}")
        if self.depth >= self._max_queue and sum(h.spare() for h in self.hosts) <= self.depth:
            raise Overflow(self.depth, self.wait_estimate_s())
        avoided = frozenset(avoid)
        host = None
        if at_once and not self._queued and self.lane_free():
            host = choose(self.hosts, model, avoid=avoided, turn=self._turn)
        self._next_id += 1
        ticket = Ticket(self._next_id, client, priority, model, now, avoided)
        ticket.prompt_tokens = max(0, prompt_tokens)
        self._now = now
        idle = self._service.hold(client)
        if host is not None:
            ticket.rank, ticket.entered_at = rank, now  # as ring.join() would set them
            self._service.forget(now)  # what admit() does first
            self._detours.affinity(host, ticket, now)  # None with an empty backlog
            return self._bind(ticket, host, now, queued=False)
        self._queued[ticket.id] = ticket
        self._ring.join(ticket, rank, now, lift=idle)
        self._backlog.add(ticket)
        self._count(ticket, 1)
        return ticket

    def admit(self, now: float) -> list[Ticket]:
        """Bind queued tickets to free lanes (rules 5, 8-11); returns the tickets bound."""
        admitted: list[Ticket] = []
        self._now = now
        self._service.forget(now)
        if not self._queued or not self.lane_free():
            return admitted
        self._ring.age(now)
        while self._queued and self.lane_free():
            head = self._ring.head()
            assert head is not None
            host = choose(self.hosts, head.model, avoid=head.avoid, turn=self._turn)
            if host is not None:
                warm = self._detours.affinity(host, head, now)
                admitted.append(self._bind(warm or head, host, now, turn=warm is None))
                continue
            placed = self._bypass(now)
            if placed is None:
                break
            admitted.append(placed)
        return admitted

    def finish(self, ticket: Ticket, now: float) -> None:
        """Free the lane of an admitted ticket."""
        if self._running.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not admitted")
        assert ticket.lane is not None
        assert ticket.admitted_at is not None
        del self._running[ticket.id]
        self.host(ticket.upstream).unbind(ticket.model, ticket.lane)
        ticket.state = TicketState.FINISHED
        self._hold.add(ticket.admitted_at, now)
        self._now = now
        self._service.release(ticket.client, now)

    def charge(
        self,
        ticket: Ticket,
        *,
        prompt_tokens: int | None = None,
        output_tokens: int | None = None,
        final: bool = False,
    ) -> None:
        """Charge an admitted (or finished) ticket's client for its work so far (rule 4):
        live counts while it runs, `final` ones from the answer. Counts given replace the
        ticket's; the client's counter moves by the difference in cost."""
        if ticket.state not in (TicketState.ADMITTED, TicketState.FINISHED):
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}: nothing to charge")
        if prompt_tokens is not None:
            ticket.prompt_tokens = max(0, prompt_tokens)
        if output_tokens is not None:
            ticket.output_tokens = max(0, output_tokens)
        ticket.charged = self._service.settle(
            ticket.client, ticket.charged, ticket.prompt_tokens, ticket.output_tokens, final=final
        )

    def cancel(self, ticket: Ticket) -> None:
        """Remove a queued ticket; it will never be bound."""
        if self._queued.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not queued")
        self._ring.leave(ticket)
        self._unqueue(ticket)
        ticket.state = TicketState.CANCELLED
        self._service.release(ticket.client, self._now)

    def drain(self) -> list[Ticket]:
        """Cancel every queued ticket (shutdown); returns them in submission order."""
        drained = list(self._queued.values())
        for ticket in drained:
            self.cancel(ticket)
        return drained

    def snapshot(self) -> QueueSnapshot:
        """The counters now, and per host the queued work it could take (rule 15)."""
        queued = self._queued
        held = self._detours.held()
        return QueueSnapshot(
            lanes=self.lanes,
            busy=self.busy,
            depth=self.depth,
            by_class=dict(self._by_class),
            by_client=dict(self._by_client),
            oldest_enqueued_at=next(iter(queued.values())).enqueued_at if queued else None,
            hosts=tuple(host_snapshot(h, self._backlog, held) for h in self.hosts),
            counters=self._service.counters(),
        )

    def _bypass(self, now: float) -> Ticket | None:
        """The head is blocked: give one free lane to the oldest ticket it can serve (rule 10)."""
        found = self._detours.bypass()
        return None if found is None else self._bind(found[0], found[1], now)

    def _bind(
        self, ticket: Ticket, host: Host, now: float, *, turn: bool = False, queued: bool = True
    ) -> Ticket:
        """Bind `ticket` to `host`; `turn`: it is the fair head, so its client's turn ends;
        `queued` False: bound on arrival (`submit(at_once=True)`), never in the ring."""
        if queued and turn:
            popped = self._ring.pop()
            assert popped is ticket
        elif queued:
            self._ring.leave(ticket)
        if queued:
            self._unqueue(ticket)
        ticket.upstream = host.name
        ticket.lane = host.bind(ticket.model)
        ticket.state = TicketState.ADMITTED
        ticket.admitted_at = now
        self._ring.served(ticket.rank, now)
        self._running[ticket.id] = ticket
        self.charge(ticket)  # the prompt estimate, at once
        self._turn += 1
        return ticket

    def _unqueue(self, ticket: Ticket) -> None:
        del self._queued[ticket.id]
        self._backlog.remove(ticket)
        self._count(ticket, -1)

    def _count(self, ticket: Ticket, delta: int) -> None:
        self._by_class[ticket.priority] += delta
        left = self._by_client.get(ticket.client, 0) + delta
        if left:
            self._by_client[ticket.client] = left
        else:
            del self._by_client[ticket.client]
