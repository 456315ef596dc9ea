"""Readers and writers: the only code that knows paths and file formats."""
