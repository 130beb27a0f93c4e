"""What addrpool reports about itself: the gauges of a metrics scrape."""
