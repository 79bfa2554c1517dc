"""The codes of logging in, tokens, users and roles."""

from core.errors import ErrorCode


class AuthErrorCode(ErrorCode):
    """Why a change to users, roles or passwords was refused."""

    INVALID_CREDENTIALS = "INVALID_CREDENTIALS", "Unknown username, wrong password or deactivated account."
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED", "The account is locked after too many failed log-ins."
    TOKEN_EXPIRED = "TOKEN_EXPIRED", "The token has expired; refresh it or log in again."
    TOKEN_INVALID = "TOKEN_INVALID", "The token is not one this server issued, or its log-in ended."
    CSRF_FAILED = "CSRF_FAILED", "A request logged in by cookie came without the frontend's CSRF token, or from another site."
    USERNAME_TAKEN = "USERNAME_TAKEN", "Another user has this username (whatever the case)."
    INVALID_USERNAME = "INVALID_USERNAME", "A username has letters, digits and @ . + - _ only."
    EMAIL_TAKEN = "EMAIL_TAKEN", "Another user has this e-mail address."
    INVALID_EMAIL = "INVALID_EMAIL", "The e-mail address is malformed."
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK", "The password fails the deployment's password rules."
    PASSWORD_UNCHANGED = "PASSWORD_UNCHANGED", "The new password is the current one."
    USE_CHANGE_PASSWORD = "USE_CHANGE_PASSWORD", "One's own password is changed with changePassword."
    CANNOT_DEACTIVATE_SELF = "CANNOT_DEACTIVATE_SELF", "An administrator cannot deactivate their own account."
    ROLE_NOT_FOUND = "ROLE_NOT_FOUND", "A role does not exist."
    ROLE_BEYOND_YOUR_RIGHTS = "ROLE_BEYOND_YOUR_RIGHTS", "A role grants permissions the caller does not hold."
    ROLE_NAME_TAKEN = "ROLE_NAME_TAKEN", "Another role has this name."
    UNKNOWN_PERMISSION = "UNKNOWN_PERMISSION", "No enabled module declares this permission code."
    LOCATIONS_UNAVAILABLE = "LOCATIONS_UNAVAILABLE", "No enabled module scopes users to locations."
    # Returned through coremis_user_location_problems by the module that scopes users.
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND", "A location of the user's scope does not exist."
    LOCATION_REQUIRED = "LOCATION_REQUIRED", "A scoped administrator must give the user one of their locations."
