from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError

from core.auth.backends import refusal_of
from core.auth.errors import AuthErrorCode
from core.models import ApprovalTask, Job, MutationLog, Role, TaskGroup, TaskGroupChecker, User


class LockoutAwareLoginForm(AdminAuthenticationForm):
    """The admin's login form, telling a locked-out person so instead of "wrong password"."""

    def get_invalid_login_error(self) -> ValidationError:
        refusal = refusal_of(self.request)
        if refusal is not None and refusal.code == AuthErrorCode.ACCOUNT_LOCKED:
            return ValidationError(refusal.message, code="account_locked")
        return super().get_invalid_login_error()


admin.site.login_form = LockoutAwareLoginForm


@admin.register(User)
class CoreUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("coremis", {"fields": ("roles", "failed_login_attempts", "locked_until")}))
    list_display = ("username", "email", "is_active", "is_superuser", "locked_until")


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "is_deleted", "version")
    search_fields = ("name",)


@admin.register(MutationLog)
class MutationLogAdmin(admin.ModelAdmin):
    list_display = ("mutation_name", "status", "user", "request_date_time", "client_mutation_id")
    list_filter = ("status", "mutation_name")
    readonly_fields = [f.name for f in MutationLog._meta.fields]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("kind", "state", "processed", "total", "error_count", "created_by", "created_at")
    list_filter = ("state", "kind")
    readonly_fields = [f.name for f in Job._meta.fields]


class TaskGroupCheckerInline(admin.TabularInline):
    model = TaskGroupChecker
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(TaskGroup)
class TaskGroupAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "completion_policy", "required_approvals", "is_deleted")
    search_fields = ("code", "name")
    inlines = (TaskGroupCheckerInline,)


@admin.register(ApprovalTask)
class ApprovalTaskAdmin(admin.ModelAdmin):
    # Read-only: deciding goes through resolve_task, so the action runs exactly once.
    list_display = ("action", "entity_type", "entity_id", "status", "maker", "task_group", "date_created")
    list_filter = ("status", "module", "action")
    search_fields = ("entity_id", "action")
    readonly_fields = [f.name for f in ApprovalTask._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
