"""What a GraphQL request costs, computed from the document before anything runs.

A request is refused in graphene's validation pass (so before any resolver and any SQL)
when its cost is above ``COREMIS["GRAPHQL_MAX_COST"]``. The cost is an upper bound of the
work the request asks for:

- every selected field costs 1, aliases included: ``a: individual … b: individual …`` is
  two fields, each with its own cost;
- a connection (a field taking ``first``/``last``) costs ``GRAPHQL_CONNECTION_COST`` more,
  once per place it appears in the document (not per parent row: nested lists are fetched
  a page at a time, not a query per row), for the count and page queries it runs;
- inside a connection, a list field (``edges``) costs its selection times the page size:
  ``first`` or ``last`` (a literal or a variable), the largest page when neither is given;
- nested connections multiply: 100 households with 100 members each cost 100 x 100 x the
  member's fields;
- fragments count where they are spread; ``__typename`` and introspection are free of
  page multipliers (they are lists of the schema, not of data).

Paging arguments are checked here too, so a page larger than the limit, a negative page or
offset, or an offset with ``before`` (or with a cursor that is not one) is a typed error
before execution rather than an assertion inside a resolver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql_relay import cursor_to_offset

from core.errors import RequestErrorCode

PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True)
class CostLimits:
    max_cost: int
    connection_cost: int
    max_page_size: int


class PagingError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class _Coster:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 operation: OperationDefinitionNode, variables: Mapping[str, Any], limits: CostLimits) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.connections = 0
        self.variables = dict(variables)
        # A variable the request does not send takes its declared default.
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                return self.variables.get(value.name.value)
            if isinstance(value, IntValueNode):
                return int(value.value)
            return getattr(value, "value", None)  # a string literal (a cursor), or null
        return None

    def _int_argument(self, node: FieldNode, name: str) -> int | None:
        value = self._argument(node, name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def page_size(self, node: FieldNode) -> int:
        field_name = node.name.value
        sizes = []
        for name in PAGE_ARGUMENTS:
            size = self._int_argument(node, name)
            if size is None:
                continue
            if size < 0:
                raise PagingError(RequestErrorCode.INVALID_PAGE, f"'{name}' on `{field_name}` must not be negative.")
            if size > self.limits.max_page_size:
                raise PagingError(
                    RequestErrorCode.PAGE_TOO_LARGE,
                    f"Requesting {size} records on the `{field_name}` connection exceeds the "
                    f"`{name}` limit of {self.limits.max_page_size} records.",
                )
            sizes.append(size)
        offset = self._int_argument(node, "offset")
        if offset is not None:
            if offset < 0:
                raise PagingError(RequestErrorCode.INVALID_PAGE, f"'offset' on `{field_name}` must not be negative.")
            if self._argument(node, "before") is not None:
                raise PagingError(RequestErrorCode.INVALID_PAGE, f"'offset' and 'before' cannot be combined on `{field_name}`.")
            after = self._argument(node, "after")
            if after is not None and cursor_to_offset(str(after)) is None:
                raise PagingError(RequestErrorCode.INVALID_CURSOR, f"'after' on `{field_name}` is not a cursor this API returned.")
        return max(sizes) if sizes else self.limits.max_page_size

    def selection(self, selection_set: SelectionSetNode | None, parent: Any, page: int,
                  spread: frozenset[str] = frozenset()) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, parent, page, spread)
            elif isinstance(node, InlineFragmentNode):
                condition = (self.schema.get_type(node.type_condition.name.value)
                             if node.type_condition else parent)
                total += self.selection(node.selection_set, condition or parent, page, spread)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:  # other rules report these
                    continue
                condition = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selection(fragment.selection_set, condition or parent, page, spread | {name})
        return total

    def field(self, node: FieldNode, parent: Any, page: int, spread: frozenset[str]) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 1  # __typename, __schema, __type: the schema, never rows
        definition = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        if definition is None:
            return 1  # unknown fields are FieldsOnCorrectTypeRule's to report
        child_type = get_named_type(definition.type)
        if any(arg in definition.args for arg in PAGE_ARGUMENTS):
            size = self.page_size(node)
            self.connections += 1
            return 1 + self.selection(node.selection_set, child_type, size, spread)
        children = self.selection(node.selection_set, child_type, 1, spread)
        return 1 + (page * children if _is_list(definition.type) else children)


def document_costs(context: ValidationContext, variables: Mapping[str, Any],
                   limits: CostLimits) -> dict[str | None, int]:
    """The cost of each operation of the document, by name."""
    fragments = {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}
    costs: dict[str | None, int] = {}
    for definition in context.document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        root = context.schema.get_root_type(definition.operation)
        coster = _Coster(context.schema, fragments, definition, variables, limits)
        name = definition.name.value if definition.name else None
        fields = coster.selection(definition.selection_set, root, 1)
        costs[name] = fields + coster.connections * limits.connection_cost
    return costs


def cost_limit_validator(variables: Mapping[str, Any] | None, limits: CostLimits) -> type[ValidationRule]:
    """A validation rule refusing a document whose cost is above ``limits.max_cost``.

    The rule is made per request because page sizes sent as variables count.
    """

    class CostLimitRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            try:
                costs = document_costs(context, variables or {}, limits)
            except PagingError as exc:
                context.report_error(GraphQLError(exc.message, extensions={"code": exc.code}))
                return
            for name, cost in costs.items():
                if cost > limits.max_cost:
                    label = f"The operation '{name}'" if name else "This query"
                    context.report_error(GraphQLError(
                        f"{label} costs {cost}, above the limit of {limits.max_cost}: ask for fewer "
                        "fields, smaller pages (first/last) or fewer aliases, or split it into several "
                        "requests.",
                        extensions={"code": RequestErrorCode.QUERY_TOO_COSTLY, "cost": cost, "limit": limits.max_cost},
                    ))

    return CostLimitRule
