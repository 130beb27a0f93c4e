"""Everything that talks to (or encodes for) a chain. Imports `pool` only."""
