"""overleg: the event-sourced record of client consultations (cliëntoverleg)."""

__version__ = "0.1.0"
