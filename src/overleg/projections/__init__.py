"""Read models built only from events: case views, audit trail, annual statistics, bottlenecks."""
