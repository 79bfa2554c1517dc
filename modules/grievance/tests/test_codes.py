"""Ticket codes: one sequence per prefix and year, never shared, even by creators at the same moment."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from modules.grievance.models import Ticket


@pytest.mark.django_db(transaction=True)
def test_concurrent_creators_never_share_a_code(admin_user: Any) -> None:
    from django.db import transaction

    from modules.grievance.services.tickets import check_create_tickets, do_create_tickets

    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def create() -> None:
        try:
            start.wait()
            for _ in range(5):
                with transaction.atomic():
                    do_create_tickets(check_create_tickets(admin_user, [
                        {"title": "t", "category": "autre"}, {"title": "u", "category": "autre"}]))
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    numbers = sorted(int(code.rsplit("-", 1)[1]) for code in Ticket.objects.values_list("code", flat=True))
    assert numbers == list(range(1, 41))


@pytest.mark.django_db
def test_a_refused_batch_gives_its_numbers_back(admin_user: Any) -> None:
    from core.errors import ServiceError
    from modules.grievance.services.tickets import create_ticket

    with pytest.raises(ServiceError):
        create_ticket(admin_user, title="t", category="nope")
    assert create_ticket(admin_user, title="t", category="autre").code.endswith("-000001")
