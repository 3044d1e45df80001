"""schemathesis against a real gateway process on real Airflow, from the gateway's own OpenAPI document.

Every operation (each plugin API, the experimental API, jobs, health, metrics) is called with generated
valid and invalid requests; every check runs: no server error, every answer conforms to the document.
The Airflow home is the test's own (the fuzzer deletes, sets and clears what it likes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from ..support import TOKEN, GatewayProcess, settings_dict

pytestmark = pytest.mark.integration
#: Calls per operation and mode: small, so CI stays fast (GATEWAY_SCHEMATHESIS_EXAMPLES=50 for a deep run).
MAX_EXAMPLES = int(os.environ.get("GATEWAY_SCHEMATHESIS_EXAMPLES", "4"))
#: Valid requests the gateway may still refuse: besides schemathesis' defaults, a 400 for what no schema
#: says (an argument combination, a DAG that cannot run, a run that already exists), 410 for an API
#: Airflow 3 removed, 413 for a command line too long for Linux, 422 for a task that failed.
ACCEPTED_REFUSALS = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "413", "422", "429"]
#: Invalid requests must get one of these: schemathesis' defaults without 5xx, with 410 (every call of an API
#: Airflow 3 removed is refused so) and 413 (too large).
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, homes: Any) -> Iterator[GatewayProcess]:
    config = settings_dict(
        homes.fresh("sqlite"),
        runner={"mode": "warm", "timeout_s": 60, "max_queue": 64},
        wait={"max_timeout_s": 2, "poll_s": 0.2},
        experimental={"warm_at_start": True},
    )
    process = GatewayProcess(tmp_path_factory.mktemp("schemathesis"), config)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api_schema(gateway: GatewayProcess) -> Any:
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"token": {"api_key": TOKEN}}},
            "request-timeout": 120,
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED_REFUSALS},
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
            },
        }
    )
    return schemathesis.openapi.from_url(f"{gateway.url}/openapi.json", config=config)


def _fuzz(operation: Any, mode: GenerationMode) -> list[str]:
    """``MAX_EXAMPLES`` generated calls of ``operation`` in ``mode``, every check; the failures, described."""
    failures: list[str] = []

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],  # no shrinking: report what was found, quickly
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def call(case: Any) -> None:
        try:
            case.call_and_validate()
        except (Exception, BaseExceptionGroup) as exc:  # a check's failure group, or the call itself
            failures.append(f"{operation.label} [{mode}]: {exc}"[:3000])

    try:
        call()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"no valid call of {operation.label} could be generated"
    return failures


def test_the_gateway_keeps_its_own_contract(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for failure in _fuzz(operation, mode)
    ]
    assert not failures, "\n\n".join(failures)


def test_linked_calls_keep_the_contract(api_schema: Any) -> None:
    """Stateful: a job started with async=true, then its status, log and cancel through the document's links."""
    machine = api_schema.as_state_machine()
    machine.run(
        settings=hypothesis.settings(
            max_examples=MAX_EXAMPLES * 2,
            stateful_step_count=4,
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
