"""Every SQL statement of addrpool, in modules named for the table they serve."""
