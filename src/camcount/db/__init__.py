"""Database access: connection strings, pools, the tenant-scoped transaction, migrations, roles."""
