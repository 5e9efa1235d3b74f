"""Read models built only from events: case views, the audit trail, annual statistics."""
