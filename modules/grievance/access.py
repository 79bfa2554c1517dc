"""Who may read which ticket, and how much of it.

Every path that shows tickets (the list and its ``totalCount``, ``node``, comments,
attachments, tasks, history, the summary counts, exports) starts from :func:`visible_tickets`:
the reader's location scope, minus the sensitive tickets none of their roles may read. For the
tickets left, :func:`level_of` says whether the reader sees all of a ticket (``FULL``) or only
the configured fields (``RESTRICTED``); :func:`log_reads` records every read of a sensitive one.

A category or flag with ``access`` rules is sensitive. A reader must pass the rules of every
level of the category's path and of every sensitive flag: a ``read`` role passes a rule, a
``restricted_read`` role passes it seeing only its ``visible_fields``, no role hides the
ticket. The most restrictive rule wins; superusers and the system read everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from modules.grievance import clock
from modules.grievance.configuration import TICKET_FIELDS, Config, config
from modules.location.services import scope_queryset

FULL = "FULL"
RESTRICTED = "RESTRICTED"
HIDDEN = "HIDDEN"
RESTRICTED_TEXT = "[Restricted]"
ANONYMISED_TEXT = "[Anonymised]"


@dataclass(frozen=True)
class Viewer:
    user: Any
    roles: frozenset[str]
    unrestricted: bool


def viewer(user: Any) -> Viewer:
    """The reader's role names, read once per request (cached on the user object)."""
    cached = getattr(user, "_grievance_viewer", None)
    if cached is not None:
        return cached
    from core.actors import is_system

    unrestricted = bool(getattr(user, "is_superuser", False)) or is_system(user)
    roles: frozenset[str] = frozenset()
    if not unrestricted and getattr(user, "pk", None) is not None:
        roles = frozenset(user.roles.filter(is_deleted=False).values_list("name", flat=True))
    made = Viewer(user, roles, unrestricted)
    try:
        user._grievance_viewer = made
    except AttributeError:  # a frozen actor
        pass
    return made


def _rules(cfg: Config, category: str, flags: Iterable[str]) -> list[Any]:
    rules = list(cfg.categories[category].access) if category in cfg.categories else []
    for code in flags or ():
        flag = cfg.flags.get(code)
        if flag is not None and flag.access is not None:
            rules.append(flag.access)
    return rules


def is_sensitive(category: str, flags: Iterable[str]) -> bool:
    return bool(_rules(config(), category, flags))


def level_of(reader: Viewer, category: str, flags: Iterable[str]) -> tuple[str, frozenset[str]]:
    """``(FULL | RESTRICTED | HIDDEN, the fields the reader sees)``."""
    everything = frozenset(TICKET_FIELDS)
    if reader.unrestricted:
        return FULL, everything
    level, visible = FULL, everything
    for rule in _rules(config(), category, flags):
        if reader.roles & rule.read:
            continue
        if reader.roles & rule.restricted_read:
            level, visible = RESTRICTED, visible & frozenset(rule.visible_fields)
            continue
        return HIDDEN, frozenset()
    return level, visible


def hidden_condition(reader: Viewer) -> Q | None:
    """Tickets the reader may not see at all, as one condition (``None``: none are hidden)."""
    if reader.unrestricted:
        return None
    cfg = config()
    allowed = lambda rule: bool(reader.roles & (rule.read | rule.restricted_read))  # noqa: E731
    categories = [path for path, category in cfg.categories.items() if not all(allowed(r) for r in category.access)]
    flags = [code for code, flag in cfg.flags.items() if flag.access is not None and not allowed(flag.access)]
    condition = Q(pk__in=[])
    if categories:
        condition |= Q(category__in=categories)
    if flags:
        condition |= Q(flags__overlap=flags)
    return condition if (categories or flags) else None


def visible_tickets(user: Any, queryset: QuerySet, location_field: str = "location") -> QuerySet:
    """``queryset`` (of tickets) limited to what ``user`` may see: in scope, not hidden."""
    queryset = scope_queryset(queryset, user, location_field)
    hidden = hidden_condition(viewer(user))
    return queryset if hidden is None else queryset.exclude(hidden)


def visible_related(user: Any, queryset: QuerySet, ticket_field: str = "ticket") -> QuerySet:
    """Rows of a ticket's (comments, attachments, tasks) whose ticket ``user`` may see."""
    from modules.grievance.models import Ticket

    return queryset.filter(**{f"{ticket_field}__in": visible_tickets(user, Ticket.objects.all()).values("pk")})


def log_reads(user: Any, tickets: Iterable[Any], path: str) -> int:
    """Record one read per sensitive ticket in ``tickets`` (one statement for a whole page)."""
    from modules.grievance.models import AccessLog

    reader = viewer(user)
    now = clock.now()
    rows = []
    for ticket in tickets:
        if is_sensitive(ticket.category, ticket.flags):
            level, _ = level_of(reader, ticket.category, ticket.flags)
            rows.append(AccessLog(ticket_id=ticket.pk, user_id=getattr(user, "pk", None), path=path, level=level, at=now))
    if rows:
        AccessLog.objects.bulk_create(rows)
    return len(rows)


def without_hidden_part(user: Any, queryset: QuerySet, part: str | None, ticket_path: str = "ticket") -> QuerySet:
    """``queryset`` without the rows of tickets whose ``part`` (a field of ``TICKET_FIELDS``;
    ``None``: anything beyond the restricted view) the reader may not see: a restricted reader
    gets no comments, attachments or tasks unless their visible fields name them, and cannot
    search restricted tickets by a field they are not shown."""
    reader = viewer(user)
    if reader.unrestricted:
        return queryset
    prefix = f"{ticket_path}__" if ticket_path else ""
    cfg = config()

    def blocked(rule: Any) -> bool:
        if reader.roles & rule.read:
            return False
        return part is None or part not in rule.visible_fields

    categories = [path for path, category in cfg.categories.items() if any(blocked(r) for r in category.access)]
    flags = [code for code, flag in cfg.flags.items() if flag.access is not None and blocked(flag.access)]
    if categories:
        queryset = queryset.exclude(**{f"{prefix}category__in": categories})
    if flags:
        queryset = queryset.exclude(**{f"{prefix}flags__overlap": flags})
    return queryset
