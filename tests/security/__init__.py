"""The security suite (issue 9): attacks and careless use replayed against every write path, role and upload.

Each module replays one class of defect; the personas and the test province come from tests/conftest.py.
"""
