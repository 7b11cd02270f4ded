"""The outbox and the webhooks' deliveries, as stored: written with the change they tell of, owed only to
subscribers, claimed under a lease, in order per job, fenced; and the /webhooks routes."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from specs import parse_job_spec
from store.alerts import record_firings
from store.attempts import Attempt, claim_next, fail_attempt, succeed_attempt
from store.jobs import create_job, request_cancel
from store.outbox import events_after
from store.sweeps import cancel_sweep, create_sweep, finish_sweep
from store.tables import DeliveryStatus, Job, JobEvent, JobStatus, WebhookDelivery, utcnow
from store.transitions import transition
from store.unit_of_work import transact, unit_of_work
from store.webhooks import AttemptOutcome, claim_due_delivery, create_webhook, record_attempt
from tests.conftest import local_client, new_job

OK = AttemptOutcome(200, "ok", None, 0.01)
REFUSED = AttemptOutcome(503, "busy", None, 0.01)


def _ended_job(sessions: sessionmaker[Session], succeed: bool = True) -> int:
    with sessions() as session:
        create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        attempt = claim_next(sessions, "w")
    assert attempt is not None
    if succeed:
        assert transact(
            sessions, lambda session: succeed_attempt(session, attempt, {"test_accuracy": 0.41}, 100, b"model")
        )
    else:
        with unit_of_work(sessions) as session:
            assert fail_attempt(session, attempt, "out of memory")
    return attempt.job_id


def _kinds(session: Session, job_id: int | None = None) -> list[str]:
    return [event.kind for event in events_after(session, 0, 100, job_id)]


def test_every_status_change_writes_its_event_in_the_same_transaction(sessions: sessionmaker[Session]) -> None:
    job_id = _ended_job(sessions)
    with sessions() as session:
        events = events_after(session, 0, 100, job_id)
        assert [e.kind for e in events] == ["job.running", "job.succeeded"]
        assert events[0].id < events[1].id
        ended = events[1].data
        assert ended["status"] == "succeeded" and ended["final_metrics"] == {"test_accuracy": 0.41}
        assert ended["model"] == "torch_mlp" and ended["attempt"] == 1 and ended["step"] == 100
        # a change rolled back leaves no event behind
        other = new_job(sessions)
        transition(session, Job.id == other, JobStatus.cancelled)
        session.rollback()
        assert _kinds(session, other) == [] and session.get(Job, other).status == "queued"  # type: ignore[union-attr]
        request_cancel(session, other)  # a queued job is cancelled at once
        session.commit()
        assert _kinds(session, other) == ["job.cancelled"]
        assert events_after(session, events[1].id, 100)[0].job_id == other  # read on from an id


def test_a_sweeps_end_is_an_event(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        finished = create_sweep(session, "a", {"trials": 1}).id
        session.commit()
        finish_sweep(session, finished)
        session.commit()
        finish_sweep(session, finished)  # already ended: no second event
        session.commit()
        cancelled = create_sweep(session, None, {"trials": 1}).id
        session.commit()
        cancel_sweep(session, cancelled)
        session.commit()
        ends = [(e.sweep_id, e.data["status"]) for e in events_after(session, 0, 100) if e.kind == "sweep.finished"]
        assert ends == [(finished, "finished"), (cancelled, "cancelled")]


def test_deliveries_are_owed_to_the_subscribers_of_an_event_only(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        on_success = create_webhook(session, "http://a/", ["job.succeeded"], "whsec_x").id
        session.commit()
        on_failure = create_webhook(session, "http://b/", ["job.failed", "sweep.finished"], "whsec_y").id
        session.commit()
    succeeded, failed = _ended_job(sessions), _ended_job(sessions, succeed=False)
    with sessions() as session:
        owed = session.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.job_id, JobEvent.kind).join(
            JobEvent, JobEvent.id == WebhookDelivery.event_id)).all()  # fmt: skip
        assert sorted(owed) == sorted([(on_success, succeeded, "job.succeeded"), (on_failure, failed, "job.failed")])


LEASE_SECONDS = 1.5  # long enough that a loaded machine still asks again within it


def test_a_claimed_delivery_is_leased_and_a_lost_lease_is_taken_over(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        create_webhook(session, "http://a/", ["job.succeeded"], "whsec_x")
        session.commit()
    job_id = _ended_job(sessions)
    with sessions() as session:
        claimed_at = time.monotonic()
        first = claim_due_delivery(session, lease_seconds=LEASE_SECONDS)
        session.commit()
        assert first is not None and first.attempt == 1 and first.data["job_id"] == job_id
        assert claim_due_delivery(session, lease_seconds=30) is None  # leased: no other deliverer takes it
        session.commit()
        second = None  # the first deliverer died mid-send: another takes the delivery once its lease ends
        while second is None and time.monotonic() < claimed_at + 10 * LEASE_SECONDS:
            second = claim_due_delivery(session, lease_seconds=30)
            session.commit()
            time.sleep(0 if second else 0.05)
        assert time.monotonic() - claimed_at >= LEASE_SECONDS  # not before
        assert second is not None and (second.id, second.attempt) == (first.id, 2)
        assert not record_attempt(session, first, OK, None)  # the first one's outcome comes too late: fenced
        session.commit()
        assert record_attempt(session, second, OK, None)
        session.commit()
        row = session.scalars(select(WebhookDelivery)).one()
        assert row.status == "delivered" and [a["attempt"] for a in row.attempt_log] == [2]
        assert claim_due_delivery(session, lease_seconds=30) is None
        session.commit()


def test_a_jobs_deliveries_go_out_in_order_and_a_given_up_one_frees_the_rest(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        create_webhook(session, "http://a/", ["job.succeeded", "job.cancelled", "job.failed"], "whsec_x")
        session.commit()
        create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        one, two = claim_next(sessions, "w"), claim_next(sessions, "w")
    assert one is not None and two is not None
    with unit_of_work(sessions) as session:
        assert fail_attempt(session, one, "first")
    with sessions() as session:  # a second event of job one (its ending told twice, as a rerun would)
        session.execute(update(Job).where(Job.id == one.job_id).values(status="running", attempts=1))
        session.commit()
    with unit_of_work(sessions) as session:
        assert fail_attempt(session, Attempt(one.job_id, 1), "second")
    with unit_of_work(sessions) as session:
        assert fail_attempt(session, two, "other job")
    with sessions() as session:
        head = claim_due_delivery(session, 30)
        session.commit()
        assert head is not None and head.data["error"] == "first"
        other = claim_due_delivery(session, 30)  # job one's second event waits behind its first; job two's goes
        session.commit()
        assert other is not None and other.data["job_id"] == two.job_id
        assert claim_due_delivery(session, 30) is None
        session.commit()
        assert record_attempt(session, head, REFUSED, utcnow() - timedelta(seconds=1))  # retry at once
        session.commit()
        again = claim_due_delivery(session, 30)
        session.commit()
        assert again is not None and again.data["error"] == "first" and again.attempt == 2
        assert record_attempt(session, again, REFUSED, None)  # the window closed: given up
        session.commit()
        last = claim_due_delivery(session, 30)
        session.commit()
        assert last is not None and last.data["error"] == "second"
        statuses = dict(session.execute(select(WebhookDelivery.id, WebhookDelivery.status)).all())
        assert statuses[head.id] == DeliveryStatus.failed.value


def _client(tmp_path: Path, database_url: str, allow_private: bool):  # type: ignore[no-untyped-def]
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, webhook_allow_private=allow_private)
    return local_client(create_app(settings))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.0.0.8/", "http://169.254.169.254/"]
)
def test_a_webhook_to_a_private_address_is_refused(tmp_path: Path, database_url: str, url: str) -> None:
    with _client(tmp_path, database_url, allow_private=False) as client:
        answer = client.post("/webhooks", json={"url": url, "events": ["job.succeeded"]})
        assert answer.status_code == 422, answer.text
        assert (
            answer.json()["message"].startswith("url: its host") and "WEBHOOK_ALLOW_PRIVATE" in answer.json()["message"]
        )
        assert client.get("/webhooks").json() == []


def test_webhook_routes(tmp_path: Path, database_url: str, sessions: sessionmaker[Session]) -> None:
    with _client(tmp_path, database_url, allow_private=True) as client:
        bad = client.post("/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["job.exploded"]})
        assert bad.status_code == 422 and bad.json()["message"].startswith("events[0]")
        short = client.post("/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["job.failed"],
                                               "secret": "whsec_c2hvcnQgc2VjcmV0IGtleSE="})  # fmt: skip
        assert short.status_code == 422 and short.json()["message"] == "secret: holds 17 bytes; at least 18 are needed"
        made = client.post("/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["job.succeeded", "job.failed"]})
        assert made.status_code == 201, made.text
        created = made.json()
        assert made.headers["location"] == f"/webhooks/{created['id']}" and created["secret"].startswith("whsec_")
        listed = client.get("/webhooks").json()
        assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
        assert "secret" not in client.get(f"/webhooks/{created['id']}").json()
        assert created["secret"] not in client.get(f"/webhooks/{created['id']}/deliveries").text
        test = client.post(f"/webhooks/{created['id']}/test")
        assert test.status_code == 202
        _ended_job(sessions)
        with sessions() as session:  # one attempt, refused, as a delivery process would record it
            due = claim_due_delivery(session, 30)
            session.commit()
            assert due is not None and due.kind == "webhook.test"
            record_attempt(session, due, REFUSED, utcnow() + timedelta(seconds=60))
            session.commit()
        page = client.get(f"/webhooks/{created['id']}/deliveries").json()
        assert page["total"] == 2 and [d["type"] for d in page["deliveries"]] == ["job.succeeded", "webhook.test"]
        tested = page["deliveries"][1]
        assert tested["event_id"] == test.json()["event_id"] and tested["status"] == "pending"
        assert [(a["attempt"], a["status_code"], a["answer"]) for a in tested["attempt_log"]] == [(1, 503, "busy")]
        assert client.get(f"/webhooks/{created['id']}").json()["pending"] == 2
        assert client.delete(f"/webhooks/{created['id']}").status_code == 204
        gone = client.get(f"/webhooks/{created['id']}/deliveries")
        assert gone.status_code == 404 and gone.json()["message"].startswith(f"webhook {created['id']} not found")


def test_an_alert_is_recorded_once_with_its_event_and_the_deliveries_it_owes(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        hook = create_webhook(session, "http://a/", ["job.alert"], "whsec_x").id
        session.commit()
        rule = {"when": "above", "metric": "loss", "split": "train", "value": 9}
        create_job(session, parse_job_spec({"model": "torch_mlp", "alerts": [rule]}))
        session.commit()
        attempt = claim_next(sessions, "w")
        assert attempt is not None
        job = session.get(Job, attempt.job_id)
        assert job is not None
        firing = {"rule": 0, "when": "above", "action": "notify", "step": 10, "message": "train loss 12 is above 9"}
        assert len(record_firings(session, job, [firing])) == 1
        session.commit()
        assert record_firings(session, session.get(Job, attempt.job_id), [firing]) == []  # type: ignore[arg-type]
        session.commit()
        alerts = [e for e in events_after(session, 0, 100, attempt.job_id) if e.kind == "job.alert"]
        assert len(alerts) == 1 and alerts[0].data["message"] == "train loss 12 is above 9"
        owed = session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook)).all()
        assert [d.event_id for d in owed] == [alerts[0].id]
        assert session.get(Job, attempt.job_id).early_stop_requested is False  # type: ignore[union-attr]
