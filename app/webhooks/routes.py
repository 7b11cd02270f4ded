"""/webhooks: URLs told when jobs end, alerts fire and sweeps finish (signed, retried, at least once)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.access.auth import audit
from app.access.permissions import ADMINS
from app.http.deps import MAX_ID, SessionDep, UnitOfWorkDep
from app.http.error_schemas import ErrorMessage
from app.webhooks.schemas import DeliveriesPublic, TestQueued, WebhookCreated, WebhookPublic, WebhookRequest
from app.webhooks.service import add_webhook, deliveries_public, webhook_public, webhooks_public
from store.webhooks import delete_webhook, find_webhook, owe_test_event

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[ADMINS])

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage, "description": "No webhook with this id."}}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={201: {"headers": {"Location": {"description": "/webhooks/{id}", "schema": {"type": "string"}}}}},
)
def add(
    request: Request, body: Annotated[WebhookRequest, Body()], session: UnitOfWorkDep, response: Response
) -> WebhookCreated:
    """Subscribe a URL to events. Each delivery is a POST of `{type, timestamp, data}` signed as the Standard
    Webhooks specification says; it is retried with exponential backoff for up to 24 hours until a 2xx
    answers, at least once and in order per job (drop repeats by the `webhook-id` header). The answer holds
    the secret: it is never shown again."""
    created = add_webhook(session, body, request.app.state.settings.webhook_allow_private)
    audit(request, session, "webhook.create", f"webhook {created.id}", {"events": list(created.events)})
    response.headers["Location"] = f"/webhooks/{created.id}"
    return created


@router.get("", response_model=list[WebhookPublic])
def get_webhooks(session: SessionDep) -> list[WebhookPublic]:
    """Every webhook (without its secret)."""
    return webhooks_public(session)


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=NOT_FOUND)
def get_webhook(session: SessionDep, webhook_id: WebhookId) -> WebhookPublic:
    return webhook_public(session, find_webhook(session, webhook_id))


@router.delete("/{webhook_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
def remove(request: Request, session: UnitOfWorkDep, webhook_id: WebhookId) -> Response:
    """The webhook and its deliveries, the pending ones too."""
    delete_webhook(session, webhook_id)
    audit(request, session, "webhook.delete", f"webhook {webhook_id}")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic, responses=NOT_FOUND)
def get_deliveries(
    session: SessionDep,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> DeliveriesPublic:
    """Its deliveries, newest first, each with every attempt's status code and answer."""
    return deliveries_public(session, webhook_id, limit, offset)


@router.post("/{webhook_id}/test", status_code=202, response_model=TestQueued, responses=NOT_FOUND)
def send_test(session: UnitOfWorkDep, webhook_id: WebhookId) -> TestQueued:
    """Owe the webhook a `webhook.test` event, sent by the delivery process like any other."""
    return TestQueued(event_id=owe_test_event(session, webhook_id))
