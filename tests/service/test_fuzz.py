"""A property-based fuzz run of the whole OpenAPI schema against a real server on loopback:
no 5xx, and every response matches its own schema. Bounded in examples and time."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)

from tests.conftest import Service, running_service

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def fuzzed_service(tmp_path: Path, data_dir: Path, database_url: str) -> Iterator[Service]:
    """A plan's probe may take PLAN_PROBE_SECONDS (8): here at most 2, so that a fuzzed `dry_run` answers well
    within the 10 s each call may take (that bound is what this checks; tests/service/test_plan_probe.py probes)."""
    with running_service(tmp_path, data_dir, database_url, {"PLAN_PROBE_SECONDS": "2"}) as service:
        yield service


def test_no_server_error_and_every_response_matches_the_schema(fuzzed_service: Service) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # Err raises
    assert len(operations) >= 8  # every route is in the schema
    # Event streams stay open until their job ends (/events: for good), so every fuzzed call would wait
    # out its timeout; tests/service/test_watching.py covers them, 404s included.
    operations = [op for op in operations if not op.path.endswith("/events")]

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=CHECKS, timeout=10)

        fuzz()
