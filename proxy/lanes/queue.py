"""LaneQueue: the one queue; fair, late-bound admission of tickets onto the lanes of hosts.

Rules. Everything that decides who gets a lane is stated here. `ring.FairRing` implements
rules 3-5, `placement` rules 6, 7, 9 and 13, and `backlog.Backlog` serves rules 10, 11 and 16.

1. Purity. No I/O, no asyncio, no clock, no logging. Every call that needs the time takes
   `now` (any monotonic seconds, read by the caller); times are only subtracted and compared.
2. Life cycle. A ticket goes QUEUED -> ADMITTED -> FINISHED, or QUEUED -> CANCELLED (client
   left, wait limit, drain). Any other call raises `SchedulerError` and changes nothing:
   finish() of a ticket this queue has not admitted, cancel() of one it does not hold queued,
   submit() with an unknown priority, a host call naming an unknown host, a bad construction.
   Every check runs before the first mutation.
3. Classes. The best non-empty class goes first: interactive, then normal, then batch.
4. Client turns. Inside a class the client keys with queued tickets form a ring. The client
   at the head gives its oldest ticket and moves to the tail if it has more; a client that was
   absent joins at the tail. So a newcomer waits at most one turn per other client in its
   class, however many tickets the others have queued. (`FairRing` documents the pointer.)
5. Aging. When admit(now) runs, a ticket that has spent `aging_s` in its class moves up one
   class and joins its client's turn there (at the tail of that client's own FIFO). Tickets
   move in the order they entered their class; a moved ticket counts as entering the upper
   class at its due time, or at that class's latest entry if later. A batch ticket is
   interactive after about 2 x aging_s, so nothing starves.
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
16. Cost. submit, cancel and finish are O(1) amortised (plus O(hosts) for the queue bound);
   each admitted ticket costs at most O(hosts x models queued), whatever the depth;
   snapshot() is O(clients + models queued x hosts), never O(tickets).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from proxy.lanes.backlog import Backlog
from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host, choose
from proxy.lanes.records import Overflow, SchedulerError
from proxy.lanes.ring import CLASSES, RANK, FairRing, HoldTime, Ticket, TicketState
from proxy.lanes.snapshot import HostSnapshot, QueueSnapshot, host_snapshot

__all__ = ["HostSnapshot", "LaneQueue", "Overflow", "QueueSnapshot", "SchedulerError"]


class LaneQueue:
    """Fair admission with late binding onto hosts; the module docstring states the rules."""

    def __init__(
        self, hosts: Sequence[Host], *, max_queue: int, aging_s: float, affinity_wait_s: float
    ) -> None:
        names = [h.name for h in hosts]
        if not hosts or len(set(names)) != len(names):
            raise SchedulerError("at least one host is needed, each with its own name")
        if max_queue < 0 or aging_s <= 0 or affinity_wait_s < 0:
            raise SchedulerError("max_queue and affinity_wait_s must be >= 0 and aging_s > 0")
        self.hosts: tuple[Host, ...] = tuple(hosts)
        self._by_name = {h.name: h for h in hosts}
        self._ring = FairRing(aging_s)
        self._backlog = Backlog()
        self._queued: OrderedDict[int, Ticket] = OrderedDict()  # in submission order
        self._running: dict[int, Ticket] = {}
        self._deferred: dict[str, float] = {}  # host -> when it first put off a swap
        self._max_queue = max_queue
        self._affinity_s = affinity_wait_s
        self._next_id = 0
        self._turn = 0
        self._by_class = dict.fromkeys(CLASSES, 0)
        self._by_client: dict[str, int] = {}
        self._hold = HoldTime()

    @property
    def lanes(self) -> int:
        """Lanes over all hosts."""
        return sum(h.capacity() for h in self.hosts)

    @property
    def busy(self) -> int:
        """Admitted tickets over all hosts."""
        return len(self._running)

    @property
    def depth(self) -> int:
        """Queued tickets."""
        return len(self._queued)

    @property
    def ring(self) -> FairRing:
        """The fair ring of the queued tickets (read it; only the queue changes it)."""
        return self._ring

    def host(self, name: str) -> Host:
        """The host called `name` (read it; change it through the methods below)."""
        host = self._by_name.get(name)
        if host is None:
            raise SchedulerError(f"unknown host {name!r}")
        return host

    def set_health(self, name: str, healthy: bool) -> None:
        """Mark a host (un)healthy; an unhealthy host gets no new tickets (rule 14)."""
        self.host(name).healthy = healthy

    def observe_host(
        self,
        name: str,
        *,
        loaded: Iterable[str] | None = None,
        installed: Iterable[str] | None = None,
    ) -> None:
        """Apply what `/api/ps` and `/api/tags` said (rule 7); None leaves that part as it is."""
        host = self.host(name)
        if loaded is not None:
            host.observe_loaded(loaded)
        if installed is not None:
            host.observe_installed(installed)

    def observe_parallel(self, name: str, parallel: Parallel) -> None:
        """The host's NUM_PARALLEL as read from the running Ollama, or why not (rule 6)."""
        self.host(name).parallel = parallel

    def observe_model(
        self, name: str, model: str, *, capabilities: Iterable[str], architecture: str | None
    ) -> None:
        """What `/api/show` says of `model` on the host: the facts its lanes follow (rule 6)."""
        self.host(name).facts[model] = (tuple(capabilities), architecture)

    def configure_host(self, name: str, *, cap: int | None, overrides: Mapping[str, int]) -> None:
        """A reloaded config's lanes for a host (a cap, or None: auto) and its model_lanes."""
        if cap is not None and cap < 1:
            raise SchedulerError("a host's lanes must be at least 1")
        host = self.host(name)
        host.cap, host.overrides = cap, dict(overrides)

    def submit(
        self,
        client: str,
        priority: str,
        now: float,
        *,
        model: str = "",
        avoid: Iterable[str] = (),
    ) -> Ticket:
        """Queue a ticket for `model`; `admit()` binds it to a host."""
        rank = RANK.get(priority)
        if rank is None:
            raise SchedulerError(f"unknown priority {priority!r}; expected one of {CLASSES}")
        free = sum(h.spare() for h in self.hosts)
        if free <= self.depth and self.depth >= self._max_queue:
            raise Overflow(self.depth, self.wait_estimate_s())
        self._next_id += 1
        ticket = Ticket(self._next_id, client, priority, model, now, frozenset(avoid))
        self._queued[ticket.id] = ticket
        self._ring.join(ticket, rank, now)
        self._backlog.add(ticket)
        self._count(ticket, 1)
        return ticket

    def admit(self, now: float) -> list[Ticket]:
        """Bind queued tickets to free lanes (rules 5, 8-11); returns the tickets bound."""
        admitted: list[Ticket] = []
        if not self._queued or not self._lane_free():
            return admitted
        self._ring.age(now)
        while self._queued and self._lane_free():
            head = self._ring.head()
            assert head is not None
            host = choose(self.hosts, head.model, avoid=head.avoid, turn=self._turn)
            if host is not None:
                warm = self._affinity(host, head, now)
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
        self._by_name[ticket.upstream].unbind(ticket.model, ticket.lane)
        ticket.state = TicketState.FINISHED
        self._hold.add(ticket.admitted_at, now)

    def cancel(self, ticket: Ticket) -> None:
        """Remove a queued ticket; it will never be bound."""
        if self._queued.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not queued")
        self._ring.leave(ticket)
        self._unqueue(ticket)
        ticket.state = TicketState.CANCELLED

    def drain(self) -> list[Ticket]:
        """Cancel every queued ticket (shutdown); returns them in submission order."""
        drained = list(self._queued.values())
        for ticket in drained:
            self.cancel(ticket)
        return drained

    def wait_estimate_s(self) -> float:
        """Seconds until one more ticket would start, from the measured lane-hold time."""
        lanes = sum(h.capacity() for h in self.hosts if h.healthy) or self.lanes
        return self._hold.wait_s(self.depth, lanes)

    def snapshot(self) -> QueueSnapshot:
        """The counters now, and per host the queued work it could take (rule 15)."""
        queued = self._queued
        held = self._held()
        return QueueSnapshot(
            lanes=self.lanes,
            busy=self.busy,
            depth=self.depth,
            by_class=dict(self._by_class),
            by_client=dict(self._by_client),
            oldest_enqueued_at=next(iter(queued.values())).enqueued_at if queued else None,
            hosts=tuple(host_snapshot(h, self._backlog, held) for h in self.hosts),
        )

    def _held(self) -> set[str]:
        """The queued models that some healthy host has installed."""
        installed = [h.installed for h in self.hosts if h.healthy and h.installed is not None]
        return {m for m in self._backlog.models() if any(m in names for names in installed)}

    def _lane_free(self) -> bool:
        return any(h.open() for h in self.hosts)

    def _oldest_for(self, host: Host, models: Iterable[str]) -> Ticket | None:
        """The oldest queued ticket for one of `models` that `host` can start now."""
        best: Ticket | None = None
        for model in models:
            if not host.free_for(model):
                continue
            ticket = self._backlog.oldest_for(model, host.name)
            if ticket is not None and (best is None or ticket.id < best.id):
                best = ticket
        return best

    def _affinity(self, host: Host, head: Ticket, now: float) -> Ticket | None:
        """A ticket for a model loaded on `host` to run instead of evicting it (rule 11)."""
        if self._affinity_s <= 0 or not host.evicts(head.model):
            self._deferred.pop(host.name, None)  # the head fits: no swap is being put off
            return None
        warm = self._oldest_for(host, list(host.loaded))
        if warm is None:
            self._deferred.pop(host.name, None)
            return None
        since = self._deferred.setdefault(host.name, now)
        if now - since >= self._affinity_s:
            del self._deferred[host.name]
            return None
        return warm

    def _bypass(self, now: float) -> Ticket | None:
        """The head is blocked: give one free lane to the oldest ticket it can serve (rule 10)."""
        held: set[str] | None = None
        for host in self.hosts:
            if not host.open():
                continue
            ticket = self._oldest_for(host, list(host.loaded))
            if ticket is None:
                held = self._held() if held is None else held
                models = [m for m in self._backlog.models() if host.has(m) or m not in held]
                ticket = self._oldest_for(host, models)
            if ticket is not None:
                return self._bind(ticket, host, now)
        return None

    def _bind(self, ticket: Ticket, host: Host, now: float, *, turn: bool = False) -> Ticket:
        """Bind `ticket` to `host`; `turn`: it is the fair head, so its client's turn ends."""
        if turn:
            popped = self._ring.pop()
            assert popped is ticket
        else:
            self._ring.leave(ticket)
        self._unqueue(ticket)
        ticket.upstream = host.name
        ticket.lane = host.bind(ticket.model)
        ticket.state = TicketState.ADMITTED
        ticket.admitted_at = now
        self._running[ticket.id] = ticket
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
