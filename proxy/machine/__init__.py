"""This machine: platform and external commands, processes and sockets, addresses and limits."""
