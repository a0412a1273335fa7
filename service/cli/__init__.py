"""The reviewrank command line: serve, the client commands, admin, status, import/export,
the load driver.
"""
