"""The job store: every table, query and status change of jobs, their curve points and artifacts.

Both the API (`app`) and the executors (`workers`) call it; `migrations` builds its schema. It
knows nothing of HTTP and nothing of how a model trains.
"""
