"""Ticket codes, ``<prefix>-<year>-<number>``, handed out without races.

One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` adds ``count`` to the year's counter and
returns the new total: the row lock it takes makes a concurrent creator wait for this
transaction, then continue from the number it left, so two tickets never share a code (the
unique index on the code is the backstop). A rolled-back creation gives its numbers back.
"""

from __future__ import annotations

from django.db import connection

from modules.grievance import clock
from modules.grievance.configuration import config


def allocate(count: int) -> list[str]:
    """``count`` new codes, in order."""
    if count <= 0:
        return []
    prefix = config().code_prefix
    year = clock.now().year
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO grievance_ticketcounter (prefix, year, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (prefix, year) DO UPDATE SET value = grievance_ticketcounter.value + EXCLUDED.value "
            "RETURNING value", [prefix, year, count])
        last = cursor.fetchone()[0]
    return [f"{prefix}-{year}-{number:06d}" for number in range(last - count + 1, last + 1)]
