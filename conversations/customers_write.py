"""Write: the customer part of an ingest plan (ingest_customers decides it). Runs inside
the ingest transaction, after the plan's conversations exist, through the ORM: a batch
makes few customers, and most batches none."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .ingest_customers import CustomerPlan
from .models import Conversation, Customer, CustomerIdentity
from .sql import rows_update


def customers_write(plan: CustomerPlan, conversation_id: Callable[[int], int | None],
                    now: datetime) -> set[int]:
    """Add the plan's customers and identities, merge, link its conversations; return the
    customers the batch touched. An identity another batch registered meanwhile wins: the
    customer this batch meant joins that one (a merge)."""
    refs = sorted(plan.new, reverse=True)
    made = Customer.objects.bulk_create(
        [Customer(display_name=plan.new[r], created_at=now) for r in refs])
    ids = {ref: customer.pk for ref, customer in zip(refs, made, strict=True)}
    merges = {ids.get(a, a): ids.get(b, b) for a, b in plan.merges.items()}

    def final(customer: int) -> int:
        customer = ids.get(customer, customer)
        seen = set()
        while customer in merges and customer not in seen:
            seen.add(customer)
            customer = merges[customer]
        return customer

    wanted = {identity: final(c) for identity, c in plan.identities.items()}
    if wanted:
        CustomerIdentity.objects.bulk_create(
            [CustomerIdentity(customer_id=c, kind=k, value=v, created_at=now)
             for (k, v), c in sorted(wanted.items())], ignore_conflicts=True)
        # One read on the (kind, value) key for the lot; pairs the batch did not ask for
        # (another kind with one of the values) are skipped here.
        for kind, value, owner in CustomerIdentity.objects.filter(
                kind__in={k for k, _ in wanted}, value__in={v for _, v in wanted}
        ).values_list("kind", "value", "customer_id"):
            if (kind, value) not in wanted:
                continue
            planned = final(wanted[(kind, value)])
            if owner != planned:
                merges[planned] = owner
    touched = set()
    for source in sorted(merges):
        target = final(source)
        if target == source:
            continue
        Conversation.objects.filter(customer_id=source).update(customer_id=target)
        CustomerIdentity.objects.filter(customer_id=source).update(customer_id=target)
        Customer.objects.filter(pk=source).delete()
        touched.add(target)
    by_customer: dict[int, list[int]] = {}
    for conversation, customer in plan.links.items():
        pk = conversation_id(conversation)
        if pk is not None:
            by_customer.setdefault(final(customer), []).append(pk)
    # One UPDATE for every link of the batch.
    rows_update(Conversation, [(pk, {"customer": customer})
                               for customer, conversations in sorted(by_customer.items())
                               for pk in sorted(conversations)])
    touched.update(by_customer)
    return touched
