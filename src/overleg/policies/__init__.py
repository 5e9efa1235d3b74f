"""The rules of a case, as plain functions shared by the aggregate and the stream importer."""
