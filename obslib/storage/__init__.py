"""Storage: connections, the embedded server, migrations and the SQL splitter they use."""
