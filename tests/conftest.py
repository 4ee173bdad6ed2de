"""Test configuration: the fixtures live in tests/fixtures as plugins."""

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.tenants", "tests.fixtures.api"]
