"""Tenants: their records, validation, provisioning, placements, lifecycle and configuration."""
