"""The partner API (issue 12): partner clients, their keys, consent tokens, the call log, the views.

Mounted at /api/ by config/urls.py; docs/api.md is the partners' guide.
"""
