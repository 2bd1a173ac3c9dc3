"""Decide: which customer a conversation belongs to. Pure Python, called from
ingest_decide (the decider opens threads and walks identify events; these rules say what
that means for customers), written by customers_write.

Rules:
- a conversation opened on SMS or WhatsApp is the customer whose phone number is its
  customer address (E.164, the `whatsapp:` prefix left out); on e-mail, whose address it
  is (lower-cased). A number or address nobody has yet makes a new customer. Web chat
  visitors are nobody until identified;
- a `customer.identified` event names the customer of its conversation by phone, e-mail
  and/or the platform's own customer id: the conversation joins the customer those
  identities belong to; identities nobody has join that customer. If they belong to
  several customers, those are one person: they are merged into the oldest (the lowest
  id; a customer this batch makes is younger than any stored one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Identity = tuple[str, str]  # kind (phone, email, external), value
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def phone_identity(address: str) -> Identity | None:
    number = re.sub(r"[\s().-]", "", address.strip().removeprefix("whatsapp:"))
    return ("phone", number) if _E164.match(number) else None


def email_identity(address: str) -> Identity | None:
    address = address.strip().lower()
    local, at, domain = address.partition("@")
    return ("email", address[:255]) if at and local and "." in domain else None


def address_identity(channel: str, address: str) -> Identity | None:
    """The identity a channel's customer address stands for, if any."""
    if channel in ("sms", "whatsapp"):
        return phone_identity(address)
    if channel == "email":
        return email_identity(address)
    return None


def identify_identities(*, phone: str = "", email: str = "",
                        customer_id: str = "") -> list[Identity]:
    found = [phone_identity(phone) if phone else None,
             email_identity(email) if email else None,
             ("external", customer_id.strip()[:255]) if customer_id.strip() else None]
    return [i for i in found if i is not None]


@dataclass
class CustomerPlan:
    """Customers and identities to add, conversations to link, customers to merge. Refs
    below zero are customers (or conversations) this batch makes."""

    new: dict[int, str] = field(default_factory=dict)  # customer ref -> display name
    identities: dict[Identity, int] = field(default_factory=dict)  # new identity -> customer
    links: dict[int, int] = field(default_factory=dict)  # conversation -> customer
    merges: dict[int, int] = field(default_factory=dict)  # customer -> the one it joins

    def __bool__(self) -> bool:
        return bool(self.new or self.identities or self.links or self.merges)


class CustomerLinker:
    def __init__(self, identities: dict[Identity, int], conversation_customers: dict[int, int],
                 ref: Callable[[], int]) -> None:
        self.known = dict(identities)
        self.of_conversation = dict(conversation_customers)
        self.ref = ref
        self.plan = CustomerPlan()

    def _canonical(self, customer: int) -> int:
        while customer in self.plan.merges:
            customer = self.plan.merges[customer]
        return customer

    def _new(self, name: str = "") -> int:
        ref = self.ref()
        self.plan.new[ref] = name
        return ref

    def _link(self, conversation: int, customer: int) -> None:
        self.of_conversation[conversation] = customer
        self.plan.links[conversation] = customer

    def thread_opened(self, conversation: int, channel: str, address: str) -> None:
        identity = address_identity(channel, address)
        if identity is None:
            return
        customer = self.known.get(identity)
        if customer is None:
            customer = self.known[identity] = self._new()
            self.plan.identities[identity] = customer
        self._link(conversation, self._canonical(customer))

    def named(self, conversation: int, name: str) -> None:
        """A customer this batch makes takes the first name its messages give."""
        customer = self.of_conversation.get(conversation)
        if customer is not None and customer in self.plan.new and not self.plan.new[customer]:
            self.plan.new[customer] = name[:255]

    def identify(self, conversation: int, identities: Iterable[Identity], name: str) -> None:
        identities = list(identities)
        owners = {self._canonical(self.known[i]) for i in identities if i in self.known}
        current = self.of_conversation.get(conversation)
        if current is not None:
            owners.add(self._canonical(current))
        # The oldest: stored customers (ids > 0) by id, then this batch's in creation order.
        target = (min(owners, key=lambda c: (c < 0, abs(c))) if owners
                  else self._new(name))
        for other in owners - {target}:
            self.plan.merges[other] = target
        for identity in identities:
            if identity not in self.known:
                self.known[identity] = target
                self.plan.identities[identity] = target
        self._link(conversation, target)
        if name:
            self.named(conversation, name)
