"""Every refusal of the social protection module (``SocialProtectionErrorCode``); the generic
ones (``REQUIRED``, ``TOO_LONG``, ``INVALID``, ``OUT_OF_SCOPE``, ``STALE_VERSION``…) are the
core's ``CoreErrorCode``; those of location and individual come with the requirements. All
appear in ``schema.graphql`` as the enum of this module's mutations."""

from __future__ import annotations

from core.errors import ErrorCode


class SocialProtectionErrorCode(ErrorCode):
    """Why a change to benefit plans or beneficiaries was refused."""

    # benefit plans
    PLAN_CODE_TAKEN = "PLAN_CODE_TAKEN", "Another live benefit plan has this code."
    PLAN_NAME_TAKEN = "PLAN_NAME_TAKEN", "Another live benefit plan has this name."
    PLAN_CLOSED = "PLAN_CLOSED", "The benefit plan is closed."
    HAS_BENEFICIARIES = "HAS_BENEFICIARIES", "A plan with beneficiaries cannot be deleted or change its type."
    BEFORE_START = "BEFORE_START", "The plan ends before it starts."
    NEGATIVE = "NEGATIVE", "A number (maximum beneficiaries, ceiling) is negative."
    INVALID_SCHEMA = "INVALID_SCHEMA", "beneficiaryDataSchema is not a valid JSON Schema."
    INVALID_CRITERIA = "INVALID_CRITERIA", "The eligibility criteria are malformed; the message names the path."
    WRONG_PLAN_TYPE = "WRONG_PLAN_TYPE", "The plan is of the other type (INDIVIDUAL or GROUP) than the request."
    # beneficiaries
    INVALID_TRANSITION = "INVALID_TRANSITION", "A beneficiary of this status cannot move to the one asked for."
