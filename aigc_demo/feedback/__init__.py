"""Ratings: the versioned record, the durable JSONL store, and the rating service."""
