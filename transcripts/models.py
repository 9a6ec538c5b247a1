"""Assessments, year records and their versions (tenant schema). Built in later issues."""
