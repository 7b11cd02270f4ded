"""The HTTP edge every feature stands on: the one error shape and the table of domain errors to statuses, the
body limits, the security headers, the routes' shared dependencies."""
