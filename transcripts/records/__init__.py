"""Year records in the database: the snapshot taken from a school's book, and the lifecycle.

`snapshot` reads the book (one class at a time, a fixed number of queries) into the document's
dataclasses (transcripts.document); `services` creates the records, moves them through the
states of domain.md §5, and makes corrections and revocations. The models are
transcripts.models_records; the database trigger that freezes a signed record is migration 0005.
"""
