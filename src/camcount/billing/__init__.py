"""camcount."""
