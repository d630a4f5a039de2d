"""Serial ports: transports, virtual pairs, I/O threads."""
