"""Where overleg keeps things: the event store, the projections' tables, the service's records.

Everything that knows a database driver or a private method of the event-sourcing library
lives here, behind small interfaces; the rest of overleg sees ``StoreUnavailable`` when the
store cannot answer, never a driver's exception.
"""
