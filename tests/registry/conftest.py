"""Fixtures of the registry tests: a class with its records, as the transcripts tests make them."""

from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401 -- fixtures
