"""The social protection module's permission codes (``<module>.<noun>.<verb>``), used by the
declaration (``declared(permissions)``) and by every check alike.

``social_protection.enroll`` is a job kind and an approval action, no longer also the
permission: enrolling (and previewing it) needs ``BENEFICIARY_ENROLL``.
"""

from __future__ import annotations

from core.permissions import Permission

PLAN_SEARCH = Permission("social_protection.plan.search", "List and read benefit plans", openimis=(160001, 171001))
PLAN_CREATE = Permission("social_protection.plan.create", "Create benefit plans", openimis=(160002, 171002))
PLAN_UPDATE = Permission("social_protection.plan.update", "Change benefit plans and their criteria", openimis=(160003, 171003))
PLAN_DELETE = Permission("social_protection.plan.delete", "Delete benefit plans without beneficiaries", openimis=(160004, 171004))
PLAN_CLOSE = Permission("social_protection.plan.close", "Close benefit plans (graduates beneficiaries)", openimis=(160005,))
BENEFICIARY_ENROLL = Permission("social_protection.beneficiary.enroll", "Preview targeting and enroll beneficiaries", openimis=(170002,))
BENEFICIARY_SEARCH = Permission("social_protection.beneficiary.search", "List and read beneficiaries", openimis=(170001,))
BENEFICIARY_UPDATE = Permission("social_protection.beneficiary.update", "Change beneficiary status", openimis=(170003,))
