"""Webhooks: where a URL may point, how a delivery is signed and sent, and the process that sends them."""
