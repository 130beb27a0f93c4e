"""addrpool's core: data model, allocation, import, the outbox; every SQL statement lives here."""

__version__ = "0.1.0"
