"""The deployment's rules for individuals and households, compiled once per process."""

from __future__ import annotations

from functools import cache

from core.json_ext import JsonExtSchema
from core.loader import module_config


@cache
def individual_schema() -> JsonExtSchema:
    return JsonExtSchema(module_config("individual")["individual_schema"])


@cache
def group_schema() -> JsonExtSchema:
    return JsonExtSchema(module_config("individual")["group_schema"])
