"""``make bench-compare``: pyrstmdb side by side with Redis, PostgreSQL and SQLite.

One workload ("order lifecycle", :mod:`bench.compare.workload`) runs against every
system in its fairest durable configuration, with 1 and 32 clients, and one table
comes out (:mod:`bench.compare.report`). Each ``peer_*`` module adapts one system:
it starts the server it needs (and stops it), and speaks its protocol with a
minimal client, one connection per client and one request in flight.
"""
