"""The public request form: anyone may submit a request; nobody reads anything back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from overleg.aggregates.values import Channel, Client, Party, Role
from overleg.api import headers
from overleg.api.deps import Svc
from overleg.api.idempotency import PublicKey
from overleg.api.problems import (
    INTAKE_LIMITED,
    INVALID_INPUT,
    MALFORMED_BODY,
    OUTCOME_UNKNOWN,
    RULE_BROKEN,
    STORE_BUSY,
    responses,
)
from overleg.api.ratelimits import intake_allowance
from overleg.api.schemas import IntakeIn, Receipt
from overleg.commands import SubmitRequest
from overleg.policies.access import PublicForm

router = APIRouter(prefix="/intake", tags=["intake"])


@router.post(
    "",
    status_code=202,
    summary="Submit the online request form",
    responses={
        **headers.success(
            202,
            "Received: quote the receipt when you contact the continuity team",
            (headers.IDEMPOTENCY_KEY,),
            (headers.IDEMPOTENCY_REPLAYED,),
        ),
        **responses(
            MALFORMED_BODY, RULE_BROKEN, INVALID_INPUT, INTAKE_LIMITED, STORE_BUSY, OUTCOME_UNKNOWN
        ),
    },
    dependencies=[Depends(intake_allowance)],
)
def submit(body: IntakeIn, svc: Svc, key: PublicKey, response: Response) -> Receipt:
    """The client, a parent, a legal representative, a trusted person, a support figure or
    someone of the client's network asks for a consultation (for lokaal_clientoverleg, of
    the client's municipality).

    No account is needed. The answer is a receipt reference to quote when contacting the
    continuity team; nothing of the request can be read back through it.
    """
    command = SubmitRequest(
        programme=body.programme,
        region=body.region,
        requested_by=Party(body.requested_by.ref, Role(body.requested_by.role.value)),
        channel=Channel.FORM,
        client=Client(body.client.ref, body.client.birth_date),
        question=body.question,
        municipality=body.municipality,
        goal=body.goal,
    )
    outcome = svc.app.handle(command, PublicForm(), None, key)
    response.headers["Idempotency-Key"] = key.key
    if outcome.replayed:
        response.headers["Idempotency-Replayed"] = "true"
    return Receipt(receipt=str(outcome.case_id), received=True)
