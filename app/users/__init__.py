"""Users, their tokens, quotas and the audit log."""
