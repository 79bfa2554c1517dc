"""The payroll module's permission codes (``<module>.<noun>.<verb>``), used by the
declaration (``declared(permissions)``) and by every check alike.

The approval actions ``payroll.approve`` and ``payroll.reconcile`` (the keys of the
``approvals`` configuration, see ``approvals.py``) and the job kinds ``payroll.generate``,
``payroll.send`` and ``payroll.poll`` are other vocabularies. Deciding on an approval task
needs a permission, and that is the one link between them: a checker of ``payroll.approve``
needs ``PAYROLL_APPROVE``, one of ``payroll.reconcile`` needs ``PAYROLL_CLOSE``.
"""

from __future__ import annotations

from core.permissions import Permission

PAYROLL_SEARCH = Permission("payroll.payroll.search", "List and read payment cycles, points, payrolls and payments",
                            openimis=(200001, 201001, 202001))
CONFIGURATION_MANAGE = Permission("payroll.configuration.manage",
                                  "Create and change payment cycles and payment plans (national scope)",
                                  openimis=(200002, 200003))
PROVIDER_MANAGE = Permission("payroll.provider.manage",
                             "Create and change payment points: provider URLs and credential references (national scope)",
                             openimis=(201002, 201003, 201004))
PAYROLL_CREATE = Permission("payroll.payroll.create", "Generate payrolls and re-issue failed payments",
                            openimis=(202002,))
# (openIMIS has no 202003: its payroll approval is a task, decided under the task rights.) Its
# checker decides on the payroll's own page, which openIMIS shows only to holders of 202002, so
# approving and closing grant 202002 too: the page's create button then shows to a checker, and
# a payroll created without PAYROLL_CREATE is refused by the API.
PAYROLL_APPROVE = Permission("payroll.payroll.approve", "Approve or reject payrolls", openimis=(202002,))
PAYROLL_PAY = Permission("payroll.payroll.pay", "Send approved payrolls to payment providers")
PAYROLL_CLOSE = Permission("payroll.payroll.close", "Close (reconcile) paid payrolls", openimis=(202002,))
PAYROLL_DELETE = Permission("payroll.payroll.delete", "Delete payrolls from which nothing was sent",
                            openimis=(202004,))
