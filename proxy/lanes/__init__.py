"""Who gets a lane: the fair ring, the one queue and host placement. Pure: no I/O, no clock."""
