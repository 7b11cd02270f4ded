"""Helpers shared by the tests and the benchmarks (not part of the service): free loopback ports,
waiting for a server, a throwaway PostgreSQL server."""
