"""Counting data: sites, cameras, count events, their ingestion and aggregates."""
