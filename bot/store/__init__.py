"""The store: tables, the engine, migrations."""
