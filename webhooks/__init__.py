"""Webhooks: where a URL may point, and how a delivery is signed and sent (the process that sends them is
`workers.deliverer`)."""
