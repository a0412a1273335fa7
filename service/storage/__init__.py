"""Storage adapters implementing the application's store interface: SQLite, PostgreSQL,
transfer between them.
"""
