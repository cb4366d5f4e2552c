"""The ``labour-atlas`` command line: it drives every package (database, imports, users, the server, the demo).

One module per group of commands; :mod:`cli.main` assembles them and opens
the settings and the database once, for every command that needs them.
"""
