"""``rstmdb-cli``: the command line and the REPL of pyrstmdb (entry point: ``main.main``)."""
