"""Cluster mode: pyrstmdb's log, checkpoints and partition ownership in PostgreSQL.

Everything durable of a cluster lives in one PostgreSQL database, schema
``rstmdb`` (:mod:`.schema`). A node owns a partition through a lease with an
epoch that only grows (:mod:`.ownership`, :mod:`.lease`), and writes the
partition's log in rounds, each one transaction fenced by that epoch
(:mod:`.pglog`). ``rstmdb cluster status`` (:mod:`.status`) shows who owns what.

Import the modules themselves; this package re-exports nothing, so that the
``rstmdb`` script loads asyncpg only for cluster commands.
"""
