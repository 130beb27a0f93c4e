"""Operator tools and the `addrpool` command. May import every package; nothing imports it."""
