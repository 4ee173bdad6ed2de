"""Versioned SQL. ``control/`` builds the control plane; ``tenant/`` is the one tenant DDL."""
