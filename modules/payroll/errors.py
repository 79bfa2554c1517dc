"""Every refusal of the payroll module (``PayrollErrorCode``); the generic ones (``REQUIRED``,
``INVALID``, ``NOT_FOUND``, ``OUT_OF_SCOPE``, ``STALE_VERSION``, ``SECRET_NOT_ALLOWED``,
``URL_NOT_ALLOWED``, ``TASK_GROUP_MISSING``…) are the core's ``CoreErrorCode``; those of
location, individual and social protection (a top-up's criteria) come with the requirements.
All appear in ``schema.graphql`` as the enum of this module's mutations."""

from __future__ import annotations

from core.errors import ErrorCode


class PayrollErrorCode(ErrorCode):
    """Why a change to payment cycles, plans, points or payrolls was refused."""

    # cycles, plans, points
    CODE_TAKEN = "CODE_TAKEN", "Another live payment cycle, plan or point has this code."
    BEFORE_START = "BEFORE_START", "The payment cycle ends before it starts."
    CYCLE_CLOSED = "CYCLE_CLOSED", "The payment cycle is closed; it can no longer change."
    CYCLE_IN_USE = "CYCLE_IN_USE", "The payment cycle has payrolls: its dates are fixed and it cannot be deleted."
    PLAN_IN_USE = "PLAN_IN_USE", ("The payment plan has payrolls whose amounts depend on its rule, currency or "
                                  "minor unit, or it cannot be deleted.")
    POINT_IN_USE = "POINT_IN_USE", "Payments through the payment point are not final yet; it cannot be deleted."
    UNKNOWN_ADAPTOR = "UNKNOWN_ADAPTOR", "The adaptor is not one of the payment methods."
    UNKNOWN_LOCATION = "UNKNOWN_LOCATION", "A location named (routing, locationIds) does not exist."
    LITERAL_SECRET = "LITERAL_SECRET", "A credential in a payment point's config is a value, not an {\"env\": NAME} reference."
    # calculation rules (rules.py)
    INVALID_RULE = "INVALID_RULE", "The calculation rule is malformed; the message names the part."
    INVALID_AMOUNT = "INVALID_AMOUNT", "An amount is not a finite number, whole in the minor unit, and not negative."
    AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE", "An amount, or a payroll's total, is larger than can be recorded."
    # generation
    CYCLE_NOT_ACTIVE = "CYCLE_NOT_ACTIVE", "Payrolls are generated in ACTIVE payment cycles only."
    OUTSIDE_PLAN_VALIDITY = "OUTSIDE_PLAN_VALIDITY", "The payment cycle is not within the benefit plan's validity."
    NOTHING_TO_PAY = "NOTHING_TO_PAY", "No active beneficiary is left to pay in the cycle."
    NO_PAYMENT_POINT = "NO_PAYMENT_POINT", "Beneficiaries are in no payment point's locations."
    CEILING_EXCEEDED = "CEILING_EXCEEDED", "Amounts would pass the benefit plan's ceiling per beneficiary."
    NOTHING_TO_REISSUE = "NOTHING_TO_REISSUE", "No payment of the payroll failed."
    # lifecycle
    INVALID_PAYROLL_STATUS = "INVALID_PAYROLL_STATUS", "The payroll's status does not allow this (or it just changed)."
    CONTROL_TOTALS_MISMATCH = "CONTROL_TOTALS_MISMATCH", "The payroll's payments no longer add up to its control totals."
    NOT_RECONCILED = "NOT_RECONCILED", "A module (reconciliation) says the payroll does not add up yet."
    # providers (adaptors, callbacks)
    ADAPTOR_MISCONFIGURED = "ADAPTOR_MISCONFIGURED", "The payment point's config lacks or misstates a setting."
    PROVIDER_REFUSED = "PROVIDER_REFUSED", "The provider refused the request or a callback failed its check."
    PROVIDER_UNAUTHORIZED = "PROVIDER_UNAUTHORIZED", "The provider refused our credentials or signature."
    PROVIDER_AUTH_FAILED = "PROVIDER_AUTH_FAILED", "The provider gave no token for our credentials."
