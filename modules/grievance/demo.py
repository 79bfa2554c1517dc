"""Demo data: the roles the shipped configuration names (with the grievance permissions they
need), the demo administrator holding the handler roles at national level, and a dozen tickets
over the demo collines, one of each kind the configuration knows, some already overdue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.models import Role, User
from modules.grievance import clock
from modules.grievance import permissions as perm
from modules.grievance.configuration import config
from modules.grievance.models import Ticket
from modules.location.models import Location

HANDLER = [perm.TICKET_SEARCH, perm.TICKET_CREATE, perm.TICKET_UPDATE, perm.TICKET_RESOLVE, perm.COMMENT_CREATE,
           perm.ATTACHMENT_CREATE, perm.TASK_ACT]
DEMO = [
    ("Paiement de mai non reçu", "paiement|non_recu", "toll_free", ""),
    ("Montant reçu inférieur au montant annoncé", "paiement|montant_incorrect", "sms", ""),
    ("Ménage exclu alors qu'il remplit les critères", "inclusion|exclusion_erronee", "in_person", ""),
    ("Décès du bénéficiaire principal", "deces", "letter", ""),
    ("Carte SIM perdue, compte bloqué", "sim_compte", "toll_free", "URGENT"),
    ("Signalement confidentiel", "vbg", "in_person", ""),
    ("Suggestion sur les horaires de paiement", "autre", "suggestion_box", ""),
    ("Agent de paiement absent au point de retrait", "paiement", "kobo", ""),
]


def _roles() -> None:
    for name in sorted(config().roles):
        codes = [*HANDLER, perm.TICKET_EXPORT, perm.ACCESS_LOG_VIEW] if "lead" in name.lower() else HANDLER
        if not Role.objects.filter(name=name).exists():
            Role.objects.create(name=name, description="grievance demo role", permissions=codes)


def seed_demo_tickets(actor: Any) -> int:
    _roles()
    if Ticket.all_objects.filter(json_ext__demo=True).exists() or not config().categories:
        return 0
    admin = User.objects.filter(username="admin").first()
    if admin is not None:
        admin.roles.add(*Role.objects.filter(name__in=config().roles))
    collines = list(Location.objects.filter(type="Colline").order_by("code")[:len(DEMO)])
    from modules.grievance.services.tickets import check_create_tickets, do_create_tickets

    items = []
    for index, (title, category, channel, flags) in enumerate(DEMO):
        if category not in config().categories:
            continue
        items.append({"title": title, "category": category, "channel": channel, "flags": flags,
                      "description": f"{title} (ticket de démonstration)", "json_ext": {"demo": True},
                      "location_id": collines[index % len(collines)].pk if collines else None,
                      "name_of_complainant": "Anonyme" if category == "vbg" else ""})
    created = do_create_tickets(check_create_tickets(actor, items, "demo"))
    # two of them arrived long ago: the escalation job has something to do in the demo
    earlier = clock.now() - timedelta(days=12)
    Ticket.objects.filter(pk__in=[t.pk for t in created[:2]]).update(
        date_created=earlier, due_date=earlier + timedelta(days=2), next_escalation_at=earlier + timedelta(days=2))
    return len(created)
