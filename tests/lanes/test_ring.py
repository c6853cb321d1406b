"""FairRing, Ticket and HoldTime, driven by plain synchronous calls (h11 style)."""

from __future__ import annotations

import pytest

from proxy.lanes.ring import CLASSES, RANK, FairRing, HoldTime, Ticket, TicketState

INTERACTIVE, NORMAL, BATCH = (RANK[name] for name in CLASSES)


class Tickets:
    """Numbers tickets the way the queue does: in submission order."""

    def __init__(self) -> None:
        self.next_id = 0

    def __call__(self, client: str, priority: str = "normal", at: float = 0.0) -> Ticket:
        self.next_id += 1
        return Ticket(self.next_id, client, priority, "m", at)


def joined(ring: FairRing, tickets: Tickets, *specs: tuple[str, str, float]) -> list[Ticket]:
    """Join one ticket per (client, priority, at) to its requested class."""
    out = []
    for client, priority, at in specs:
        ticket = tickets(client, priority, at)
        ring.join(ticket, RANK[priority], at)
        out.append(ticket)
    return out


def drain(ring: FairRing) -> list[str]:
    """Pop until empty; returns the clients in turn order."""
    order = []
    while ring.head() is not None:
        order.append(ring.pop().client)
    return order


class TestClasses:
    """Rule 3: the best class with tickets gives the head."""

    def test_the_best_class_gives_the_head(self) -> None:
        """An interactive ticket is the head, whatever was queued before it."""
        ring, tickets = FairRing(30.0), Tickets()
        joined(ring, tickets, ("b", "batch", 0.0), ("n", "normal", 0.1), ("i", "interactive", 0.2))
        assert drain(ring) == ["i", "n", "b"]

    def test_class_names_in_order(self) -> None:
        """The classes are interactive, normal and batch, best first."""
        assert CLASSES == ("interactive", "normal", "batch")
        assert dict(RANK) == {"interactive": 0, "normal": 1, "batch": 2}


class TestClientTurns:
    """Rule 4: how the ring pointer moves across client keys (the tie-break)."""

    def test_pop_ends_the_turn(self) -> None:
        """The popped client moves to the tail of its class while it has tickets there."""
        ring, tickets = FairRing(30.0), Tickets()
        joined(ring, tickets, ("a", "normal", 0.0), ("a", "normal", 0.0), ("b", "normal", 0.0))
        assert ring.turns(NORMAL) == ("a", "b")
        assert ring.pop().client == "a"
        assert ring.turns(NORMAL) == ("b", "a")

    def test_last_ticket_drops_the_client(self) -> None:
        """A client whose last ticket in the class is popped leaves the ring."""
        ring, tickets = FairRing(30.0), Tickets()
        joined(ring, tickets, ("a", "normal", 0.0), ("b", "normal", 0.0))
        ring.pop()
        assert ring.turns(NORMAL) == ("b",)

    def test_an_absent_client_joins_at_the_tail(self) -> None:
        """A returning client gets no old place back: it queues behind everyone waiting."""
        ring, tickets = FairRing(30.0), Tickets()
        joined(ring, tickets, ("a", "normal", 0.0), ("b", "normal", 0.0), ("c", "normal", 0.0))
        ring.pop()
        joined(ring, tickets, ("a", "normal", 1.0))
        assert ring.turns(NORMAL) == ("b", "c", "a")

    def test_leave_moves_no_client(self) -> None:
        """A ticket taken out of turn leaves its client's place in the ring as it was."""
        ring, tickets = FairRing(30.0), Tickets()
        _, a2, _ = joined(
            ring, tickets, ("a", "normal", 0.0), ("a", "normal", 0.0), ("b", "normal", 0.0)
        )
        ring.leave(a2)
        assert ring.turns(NORMAL) == ("a", "b")
        assert drain(ring) == ["a", "b"]

    def test_each_client_is_fifo(self) -> None:
        """A client's tickets in one class come out in the order they joined."""
        ring, tickets = FairRing(30.0), Tickets()
        first, second = joined(ring, tickets, ("a", "normal", 0.0), ("a", "normal", 1.0))
        assert [first, second] == [ring.pop(), ring.pop()]

    def test_round_robin(self) -> None:
        """Clients take turns in the order they joined."""
        ring, tickets = FairRing(30.0), Tickets()
        for client, count in (("a", 5), ("b", 2), ("c", 1)):
            joined(ring, tickets, *[(client, "normal", 0.0)] * count)
        assert drain(ring) == ["a", "b", "c", "a", "b", "a", "a", "a"]

    def test_pop_of_an_empty_ring(self) -> None:
        """There is no head to pop in an empty ring."""
        ring = FairRing(30.0)
        assert ring.head() is None
        with pytest.raises(IndexError):
            ring.pop()


class TestAging:
    """Rule 5: a ticket moves up one class per `aging_s` spent in its class."""

    def test_promotion_joins_the_tail_of_the_clients_fifo(self) -> None:
        """A promoted ticket queues behind its client's tickets already in the upper class."""
        ring, tickets = FairRing(10.0), Tickets()
        old, fresh = joined(ring, tickets, ("a", "batch", 0.0), ("a", "normal", 5.0))
        ring.age(10.0)
        assert ring.sizes() == (0, 2, 0)
        assert [fresh, old] == [ring.pop(), ring.pop()]

    def test_a_promoted_client_joins_the_ring_tail(self) -> None:
        """A client new to the upper class takes the tail of its ring."""
        ring, tickets = FairRing(10.0), Tickets()
        joined(ring, tickets, ("old", "batch", 0.0), ("n", "normal", 9.0))
        ring.age(12.0)
        assert ring.turns(NORMAL) == ("n", "old")

    def test_entry_time_is_the_due_time(self) -> None:
        """A promoted ticket entered its new class when it was due, not when age() ran."""
        ring, tickets = FairRing(10.0), Tickets()
        (ticket,) = joined(ring, tickets, ("a", "batch", 0.0))
        ring.age(15.0)
        assert (ticket.rank, ticket.entered_at) == (NORMAL, 10.0)
        ring.age(19.9)
        assert ticket.rank == NORMAL
        ring.age(20.0)
        assert ticket.rank == INTERACTIVE

    def test_entries_stay_in_time_order(self) -> None:
        """Promoted behind a later entry, a ticket counts as entering with it."""
        ring, tickets = FairRing(10.0), Tickets()
        old, _ = joined(ring, tickets, ("old", "batch", 0.0), ("n", "normal", 11.0))
        ring.age(12.0)
        assert (old.rank, old.entered_at) == (NORMAL, 11.0)

    def test_two_classes_in_one_call(self) -> None:
        """A batch ticket that waited 2 x aging_s is interactive after one age() call."""
        ring, tickets = FairRing(10.0), Tickets()
        (ticket,) = joined(ring, tickets, ("a", "batch", 0.0))
        ring.age(25.0)
        assert (ticket.rank, ring.sizes()) == (INTERACTIVE, (1, 0, 0))

    def test_tickets_promote_in_entry_order(self) -> None:
        """Of two due tickets, the one that entered first is promoted first."""
        ring, tickets = FairRing(10.0), Tickets()
        joined(ring, tickets, ("a", "batch", 0.0), ("b", "batch", 1.0))
        ring.age(11.0)
        assert ring.turns(NORMAL) == ("a", "b")

    def test_interactive_does_not_age(self) -> None:
        """The best class is the top: nothing moves out of it."""
        ring, tickets = FairRing(10.0), Tickets()
        joined(ring, tickets, ("a", "interactive", 0.0))
        ring.age(1_000.0)
        assert ring.sizes() == (1, 0, 0)


class TestTombstones:
    """Rule 16: removal by tombstone; each one is stepped over once."""

    def test_a_left_ticket_is_skipped_once(self) -> None:
        """A ticket that left is dropped when it reaches the front, and counted."""
        ring, tickets = FairRing(30.0), Tickets()
        a1, a2, a3 = joined(ring, tickets, *[("a", "normal", 0.0)] * 3)
        ring.leave(a1)
        ring.leave(a2)
        assert (a3, 2) == (ring.head(), ring.skipped)
        assert (a3, 2) == (ring.head(), ring.skipped)

    def test_a_promoted_ticket_leaves_a_tombstone(self) -> None:
        """The old class's entry of a promoted ticket is skipped, never handed out twice."""
        ring, tickets = FairRing(10.0), Tickets()
        joined(ring, tickets, ("a", "batch", 0.0), ("a", "batch", 20.0))
        ring.age(20.0)
        assert drain(ring) == ["a", "a"]
        assert ring.sizes() == (0, 0, 0)

    def test_len_counts_live_tickets(self) -> None:
        """len() counts tickets still queued in the ring, not tombstones."""
        ring, tickets = FairRing(30.0), Tickets()
        a1, _ = joined(ring, tickets, ("a", "normal", 0.0), ("b", "batch", 0.0))
        ring.leave(a1)
        assert len(ring) == 1


class TestTicket:
    """Rule 2: a new ticket is queued and bound to nothing."""

    def test_new_ticket(self) -> None:
        """A ticket starts QUEUED, with no host, no lane and nothing to avoid."""
        ticket = Ticket(1, "a", "normal", "m", 3.0)
        assert (TicketState.QUEUED, "", None, None, frozenset()) == (
            ticket.state,
            ticket.upstream,
            ticket.lane,
            ticket.admitted_at,
            ticket.avoid,
        )


class TestHoldTime:
    """Rule 12: the wait estimate comes from the mean lane-hold time."""

    def test_default_before_any_measurement(self) -> None:
        """With nothing measured a lane is assumed held for one second."""
        assert HoldTime().wait_s(ahead=3, lanes=2) == 2.0

    def test_moving_average(self) -> None:
        """The newest hold time weighs 0.2 in the mean."""
        hold = HoldTime()
        hold.add(0.0, 4.0)
        hold.add(10.0, 9.0)  # a clock going backwards counts as zero
        assert pytest.approx(3.2) == hold.mean_s
        assert pytest.approx(3.2 * 5 / 4) == hold.wait_s(ahead=4, lanes=4)
