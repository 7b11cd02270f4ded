"""What operators and readers reach beside the features: /healthz, /metrics for Prometheus, the docs pages."""
