"""The HTTP API: thin FastAPI routers over the application's use cases and projections."""
