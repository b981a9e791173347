"""Governed searches: running one, the records kept of it, two-person review and refusals."""
