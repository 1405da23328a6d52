"""Putting sessionward's files in place: plan first (a pure function), then apply."""
