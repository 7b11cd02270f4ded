"""The API process itself: its work pools, its event-loop watch, its heap, its Prometheus metrics."""
