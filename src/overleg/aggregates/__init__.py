"""The domain: the Case aggregate, its events, values and errors. No I/O."""
