"""Root fields that check their permission before touching the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache, partial
from typing import Any, TypeVar, cast

import graphene
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import BinaryField, JSONField, QuerySet, TextField
from graphene.utils.str_converters import to_camel_case, to_snake_case
from graphene_django.filter import DjangoFilterConnectionField
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    get_named_type,
)
from graphql_relay import get_offset_with_default

from core import custom_filters
from core.errors import CoreErrorCode, ServiceError
from core.graphql import counting
from core.graphql.inputs import check_arguments
from core.graphql.permissions import check_permission, mark

T = TypeVar("T")


def _order_key(term: str) -> tuple[str, str]:
    """``"-lastName"`` / ``"individual_LastName"`` to (``"-"``, ``"individual__last_name"``)."""
    descending = term.startswith("-")
    name = term.lstrip("-+")
    return ("-" if descending else ""), to_snake_case(name)


def apply_order_by(queryset: QuerySet, terms: Iterable[str] | None, allowed: Iterable[str]) -> QuerySet:
    allowed_set = set(allowed)
    ordering: list[str] = []
    for term in terms or []:
        if not isinstance(term, str):
            raise GraphQLError("orderBy takes field names; null is not one.", extensions={"code": CoreErrorCode.INVALID_ORDER_BY})
        sign, path = _order_key(term)
        if path not in allowed_set:
            choices = ", ".join(sorted(allowed_set)) or "none"
            raise GraphQLError(
                f"Cannot order by '{term}'. Allowed: {choices} (prefix '-' for descending).",
                extensions={"code": CoreErrorCode.INVALID_ORDER_BY},
            )
        ordering.append(sign + path)
    # The primary key ends every ordering so pages are stable when sort keys repeat.
    ordering.append("-pk" if ordering and ordering[0].startswith("-") else "pk")
    return queryset.order_by(*ordering)


def _fields(selection_set: Any, info: Any) -> Iterator[FieldNode]:
    """The fields of a selection, through fragments."""
    for selection in getattr(selection_set, "selections", None) or ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, info)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in info.fragments:
            yield from _fields(info.fragments[selection.name.value].selection_set, info)


def selects(info: Any, *path: str) -> bool:
    """Whether the request asks for ``path`` (GraphQL field names, fragments followed) on the
    nodes of the list being resolved (``edges { node { … } }``), or on the object itself when
    the field is not a list (``node(id:)``).

    For what a node type reads only when a field asks for it (a prefetch of a task's decisions,
    a job's history): a list that does not show the field does not pay for it. Leaving the
    prefetch out never changes an answer, the field's resolver reads the relation itself."""

    def walk(selection_set: Any, rest: tuple[str, ...]) -> bool:
        if not rest:
            return True
        return any(field.name.value == rest[0] and walk(field.selection_set, rest[1:])
                   for field in _fields(selection_set, info))

    return any(walk(root.selection_set, ("edges", "node", *path)) or walk(root.selection_set, path)
               for root in info.field_nodes)


# Columns a page does not read unless the request shows them: programme fields, free text.
WIDE_COLUMNS = (JSONField, TextField, BinaryField)
_WHOLE = "*"  # a relation a resolver reads as a whole row (kept, nothing of it deferred)


class _ReadPlan:
    """What a list's page reads for one request: the relations to join and, per model reached
    (by its path from the list's rows, ``""`` for them), the names kept from deferral."""

    def __init__(self) -> None:
        self.joins: set[str] = set()
        self.models: dict[str, Any] = {}
        self.kept: dict[str, set[str]] = {}

    def reach(self, prefix: str, model: Any) -> set[str]:
        self.models.setdefault(prefix, model)
        return self.kept.setdefault(prefix, set())

    def read(self, model: Any, prefix: str, path: str) -> None:
        """A resolver reads ``path`` (``payment_point__adaptor``, or a relation, ``benefit_plan``,
        read as a whole) from the model at ``prefix``: join its relations, keep its column."""
        kept = self.reach(prefix, model)
        name, _, rest = path.partition("__")
        field = model._meta.get_field(name)
        if not (field.is_relation and (field.many_to_one or field.one_to_one)):
            kept.add(name)
            return
        self.joins.add(prefix + name)
        kept.add(name)
        if rest:
            self.read(field.related_model, f"{prefix}{name}__", rest)
        else:
            self.reach(f"{prefix}{name}__", field.related_model).add(_WHOLE)

    def deferred(self) -> list[str]:
        out = []
        for prefix, model in self.models.items():
            if prefix and prefix[:-2] not in self.joins:
                continue
            kept = self.kept[prefix]
            if _WHOLE in kept:
                continue
            out += [prefix + f.name for f in model._meta.concrete_fields
                    if isinstance(f, WIDE_COLUMNS) and not f.primary_key and f.name not in kept]
        return out


def _object_type(type_: Any) -> Any:
    named = get_named_type(type_) if type_ is not None else None
    return named if isinstance(named, GraphQLObjectType) else None


def _plan_node(plan: _ReadPlan, model: Any, object_type: Any, selection_set: Any, info: Any, prefix: str,
               depth: int) -> None:
    """Walk one node's selection: the foreign keys it selects (``depth`` levels), the columns
    it names, and what its type's ``selection_reads`` says a named field's resolver reads."""
    kept = plan.reach(prefix, model)
    node_type = getattr(object_type, "graphene_type", None)
    reads: dict[str, Iterable[str]] = getattr(node_type, "selection_reads", None) or {}
    for field_node in _fields(selection_set, info):
        graphql_name = field_node.name.value
        for path in reads.get(graphql_name, ()):
            plan.read(model, prefix, path)
        name = to_snake_case(graphql_name)
        kept.add(name)
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if (depth > 0 and field.concrete and (field.many_to_one or field.one_to_one)
                and field_node.selection_set is not None):
            plan.joins.add(prefix + name)
            inner = object_type.fields.get(graphql_name) if object_type is not None else None
            _plan_node(plan, field.related_model, _object_type(inner.type) if inner is not None else None,
                       field_node.selection_set, info, f"{prefix}{name}__", depth - 1)


def select_selection(queryset: QuerySet, info: Any, depth: int = 2) -> QuerySet:
    """The page reads what the request's selection reads, and only that.

    - ``select_related`` for every foreign key the request selects on the list's nodes (two
      levels: ``payroll { paymentPlan { code } }``), so a page reads them in its own query and
      no node type lists them by hand (``userCreated { username }`` included);
    - what a node field's resolver reads behind its name, declared on the node type as
      ``selection_reads = {"paymentMethod": ("payment_point__adaptor",)}`` (a path to a column,
      or to a relation read whole), joined only when that field is asked for, at any depth;
    - the wide columns (:data:`WIDE_COLUMNS`: ``json_ext``, free text) of the rows and of
      every joined relation are deferred unless a field of their name or a declared read
      needs them: an officer's page of ten rows does not carry ten people's programme fields.

    ``tests/test_list_query_counts.py`` asks each list for each field alone, so a resolver that
    reads a deferred column without declaring it shows up as a statement per row."""
    plan = _ReadPlan()
    root_type = _object_type(info.return_type)
    edges_type = _object_type(root_type.fields["edges"].type) if root_type and "edges" in root_type.fields else None
    node_type = _object_type(edges_type.fields["node"].type) if edges_type and "node" in edges_type.fields else None
    for root in info.field_nodes:
        for edges in _fields(root.selection_set, info):
            if edges.name.value != "edges":
                continue
            for node in _fields(edges.selection_set, info):
                if node.name.value == "node":
                    _plan_node(plan, queryset.model, node_type, node.selection_set, info, "", depth)
    if plan.joins:
        queryset = queryset.select_related(*sorted(plan.joins))
    deferred = plan.deferred()
    return queryset.defer(*sorted(deferred)) if deferred else queryset


def select_list_selection(queryset: QuerySet, info: Any, depth: int = 2) -> QuerySet:
    """:func:`select_selection` for a plain list field (``payroll { benefitConsumption { … } }``):
    the selection of the field itself is the rows' selection."""
    plan = _ReadPlan()
    node_type = _object_type(info.return_type)
    for root in info.field_nodes:
        if root.selection_set is not None:
            _plan_node(plan, queryset.model, node_type, root.selection_set, info, "", depth)
    if plan.joins:
        queryset = queryset.select_related(*sorted(plan.joins))
    deferred = plan.deferred()
    return queryset.defer(*sorted(deferred)) if deferred else queryset


def touched_by(info: Any, client_mutation_id: str, model: Any) -> list[Any]:
    """The keys of ``model``'s rows the caller's mutations sent with ``client_mutation_id``
    touched (their log's ``affected_ids``, which may name rows of other tables: a key that is
    not one of ``model``'s is left out); another user's key finds nothing."""
    from core.models import MutationLog

    user = getattr(info.context, "user", None)
    if user is None or not user.is_authenticated:
        return []
    logs = MutationLog.objects.filter(user=user, client_mutation_id=client_mutation_id[:255])
    keys = []
    for ids in logs.values_list("affected_ids", flat=True):
        for raw in ids or []:
            try:
                keys.append(model._meta.pk.to_python(raw))
            except ValidationError:
                continue
    return keys


class ProtectedConnectionField(DjangoFilterConnectionField):
    """A filterable, orderable, counted connection that needs ``permission``.

    ``order_fields`` lists what ``orderBy`` accepts (snake_case model paths). The node type's
    ``get_queryset`` applies the user's scope and any ``select_related``, so a page costs the
    same number of queries whatever its size.
    """

    def __init__(
        self,
        _type: Any,
        *args: Any,
        permission: str,
        order_fields: Iterable[str] = (),
        queryset_hook: Callable[[QuerySet, Any, dict[str, Any]], QuerySet] | None = None,
        custom_filters: bool = False,
        **kwargs: Any,
    ) -> None:
        if custom_filters:
            kwargs.setdefault("customFilters", graphene.List(
                graphene.String, description='json_ext conditions: ["field__lookup__type=value"]'))
        self.custom_filters = custom_filters
        # DjangoFilterConnectionField swallows a keyword named order_by, hence the camelCase key.
        kwargs.setdefault("orderBy", graphene.List(graphene.String))
        model = _type._meta.model
        if model._meta.label != "core.MutationLog":  # (whose own filter of that name is the log itself)
            kwargs.setdefault("clientMutationId", graphene.String(
                description="only the rows the caller's mutation with this clientMutationId touched (as "
                            "openIMIS's screens read back what they just saved)"))
        self.soft_delete = any(f.name == "is_deleted" for f in model._meta.fields)
        if self.soft_delete:
            # Start from every row so isDeleted: true can find deleted ones; live rows are the
            # default below.
            kwargs.setdefault("on", "all_objects")
        self.permission = permission
        self.order_fields = tuple(order_fields)
        self.queryset_hook = queryset_hook
        super().__init__(_type, *args, **kwargs)
        mark(self, permission)

    def get_queryset_resolver(self) -> Callable[..., Any]:
        filtering = partial(self.resolve_queryset, filterset_class=_narrowing(self.filterset_class),
                            filtering_args=self.filtering_args)

        def resolve(connection: Any, iterable: Any, info: Any, args: dict[str, Any]) -> Any:
            try:
                queryset = filtering(connection, iterable, info, args)
            except ValidationError as exc:
                raise GraphQLError(_filter_errors(exc), extensions={"code": CoreErrorCode.INVALID_FILTER}) from exc
            list_queryset = getattr(self.node_type, "list_queryset", None)
            if list_queryset is not None:
                queryset = list_queryset(queryset, info)
            if self.soft_delete and args.get("is_deleted") is None:
                queryset = queryset.filter(is_deleted=False)
            if self.custom_filters:
                try:
                    queryset = custom_filters.apply(queryset, args.get("customFilters"))
                except ServiceError as exc:
                    raise GraphQLError(exc.message, extensions={"code": exc.code}) from exc
            if self.queryset_hook is not None:
                queryset = self.queryset_hook(queryset, info, args)
            if args.get("clientMutationId") and isinstance(queryset, QuerySet):
                queryset = queryset.filter(pk__in=touched_by(info, args["clientMutationId"], queryset.model))
            if isinstance(queryset, QuerySet) and not queryset.query.combinator:  # (a union takes neither)
                queryset = select_selection(queryset, info)
            return apply_order_by(queryset, args.get("orderBy"), self.order_fields)

        return resolve

    @classmethod
    def resolve_connection(cls, connection: Any, args: dict[str, Any], iterable: Any, max_limit: Any = None) -> Any:
        """graphene-django's, with ``totalCount`` from :func:`counting.total_count` (exact up to
        a limit, a flagged estimate above it for whole tables) instead of a full ``count()``."""
        if not isinstance(iterable, QuerySet):
            return super().resolve_connection(connection, args, iterable, max_limit)
        window = _window(args, max_limit)
        count, keys = counting.count_and_window(iterable, window)
        counted = _Counted(iterable, count, None if window is None or keys is None else (window[0], keys))
        result = super().resolve_connection(connection, args, counted, max_limit)
        result.iterable = iterable
        result.length_is_estimate = count.is_estimate
        _remember_page([edge.node for edge in result.edges])
        return result

    def wrap_resolve(self, parent_resolver: Any) -> Any:
        inner = super().wrap_resolve(parent_resolver)
        permission = self.permission

        def guarded(root: Any, info: Any, **args: Any) -> Any:
            check_permission(info, permission)
            checked_arguments(args)
            return inner(root, info, **args)

        return guarded


PAGE_ATTR = "_coremis_page"


class _Page(list):
    """The rows of one page of a list, with what :func:`once_per_page` computed for them."""

    memo: dict[str, Any]


def _remember_page(nodes: list[Any]) -> None:
    page = _Page(nodes)
    page.memo = {}
    for node in nodes:
        try:
            setattr(node, PAGE_ATTR, page)
        except AttributeError:  # not a model instance: its fields are read one by one
            return


def once_per_page(node: Any, key: str, compute: Callable[[list[Any]], T]) -> T:
    """``compute(rows)`` for the page of a list ``node`` came in, once per page and ``key``.

    For a node field no join can answer (it depends on each row's own plan, say): its
    resolver asks for the whole page in one statement on the first row and reads the answer
    for the others. A node outside a list (``node(id:)``, a mutation's payload) is a page of
    one.
    """
    page = getattr(node, PAGE_ATTR, None)
    if page is None:
        return compute([node])
    if key not in page.memo:
        page.memo[key] = compute(list(page))
    return cast(T, page.memo[key])


def _window(args: dict[str, Any], max_limit: int | None) -> tuple[int, int] | None:
    """(start, size) of the page graphene-django will cut for a forward page (``first``, and
    ``after``), known before the count; None for the other shapes (``last``, ``before``,
    ``offset``), whose page depends on the count."""
    if args.get("last") is not None or args.get("before") is not None or args.get("offset"):
        return None
    first = args.get("first")
    if first is None:
        first = max_limit
    if not isinstance(first, int) or first < 0:
        return None
    return get_offset_with_default(args.get("after"), -1) + 1, first


class _Counted:
    """A queryset whose length is already known: graphene-django slices it and takes ``len``.
    With ``window`` (start, keys), the keys of the page from ``start`` on were read with the
    count; the cut from ``start`` reads only their rows."""

    def __init__(self, queryset: QuerySet, count: counting.Count,
                 window: tuple[int, list[Any]] | None = None) -> None:
        self.queryset, self.count, self.window = queryset, count, window

    def __len__(self) -> int:
        return self.count.value

    def __getitem__(self, item: Any) -> Any:
        if (self.window is not None and isinstance(item, slice) and item.start == self.window[0]
                and item.stop is None and item.step is None):
            return counting.ReadKeys(self.queryset, self.window[1])
        return counting.page(self.queryset, self.count, item)


def _narrowing(full: type) -> Callable[..., Any]:
    """``full``'s FilterSet made with only the filters a request gives a value.

    A FilterSet deep-copies every filter it declares and builds a form class and form over all
    of them each time it is made (about 3 ms for a list of 40 filters, most of a small list's
    CPU); a request names one or two. A filter with no value filters nothing, so leaving it
    out changes no answer; the whole ``data`` is still there for filters that read others
    (``self.data``). One subclass per set of names, made once.
    """

    @lru_cache(maxsize=256)
    def narrowed(names: frozenset[str]) -> type:
        cls = type(full.__name__, (full,), {"__module__": full.__module__, "__doc__": full.__doc__})
        cls.base_filters = {name: f for name, f in full.base_filters.items() if name in names}  # type: ignore[attr-defined]
        return cls

    def make(data: dict[str, Any], queryset: QuerySet, request: Any) -> Any:
        names = frozenset(name for name, value in data.items() if value is not None)
        return narrowed(names)(data=data, queryset=queryset, request=request)

    return make


def _filter_errors(exc: ValidationError) -> str:
    """The filter form's errors as one sentence (graphene-django hands them over as JSON)."""
    try:
        fields = json.loads(exc.messages[0])
        parts = [f"{to_camel_case(name)}: {' '.join(e['message'] for e in errors)}" for name, errors in fields.items()]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        parts = list(exc.messages)
    return "Invalid filter: " + "; ".join(parts)


class ProtectedField(graphene.Field):
    """A plain field that needs ``permission``; the resolver gets the checked user as ``user``."""

    def __init__(self, _type: Any, *args: Any, permission: str, **kwargs: Any) -> None:
        self.permission = permission
        super().__init__(_type, *args, **kwargs)
        mark(self, permission)

    def wrap_resolve(self, parent_resolver: Any) -> Any:
        inner = super().wrap_resolve(parent_resolver)
        return partial(_guarded, inner, self.permission)


def _guarded(inner: Callable[..., Any], permission: str, root: Any, info: Any, **args: Any) -> Any:
    check_permission(info, permission)
    checked_arguments(args)
    return inner(root, info, **args)


def checked_arguments(args: dict[str, Any]) -> None:
    """Refuse, as a GraphQL error naming the argument, what the edge does not accept."""
    try:
        check_arguments(args)
    except ServiceError as exc:
        raise GraphQLError(exc.message, extensions={"code": exc.code, "field": exc.field}) from exc
