"""vision: what the detecting, tracking and counting stages share: geometry, counters, models."""
