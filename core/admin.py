from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from core.models import Job, MutationLog, Role, User


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
