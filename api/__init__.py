"""The HTTP API: PayIn-compatible deposits, pool operations, health. Never calls a chain."""
