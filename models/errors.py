"""Errors a job can end with, phrased for the user who submitted it."""


class JobError(Exception):
    """A job that cannot run as specified; the message is stored on the job as its error."""
