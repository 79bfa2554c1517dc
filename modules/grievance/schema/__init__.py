"""The grievance module's GraphQL surface."""

from modules.grievance.schema.mutations import Mutation
from modules.grievance.schema.queries import Query

__all__ = ["Mutation", "Query"]
