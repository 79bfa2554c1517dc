"""The schema is composed from the core's surface and what each enabled module contributes."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import graphene
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from graphene.validation import depth_limit_validator
from graphene_django.views import GraphQLView
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
    validate_schema,
)

from core.auth.cookies import ACCESS_COOKIE, apply_cookie_changes
from core.auth.middleware import bearer_token
from core.errors import CoreErrorCode, ModuleConfigurationError, RequestErrorCode, ServiceError
from core.graphql.cost import CostLimits, cost_limit_validator
from core.graphql.inputs import NOT_TEXT_REASON, TextLiteralRule, unstorable_path
from core.graphql.introspection import introspection_allowed, introspection_rules
from core.graphql.permissions import PUBLIC_FIELDS, declared_permission
from core.http import classify


def merge_roots(kind: str, contributions: list[tuple[str, type]]) -> type:
    """One root type from several modules' ObjectTypes; a field defined twice stops start-up."""
    owners: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for module, cls in contributions:
        for name, field in cls._meta.fields.items():  # type: ignore[attr-defined]
            if name in owners:
                raise ModuleConfigurationError(
                    module,
                    f"defines the GraphQL {kind} field '{name}', which module '{owners[name]}' "
                    "already defines",
                    "rename the field in one of the two modules, or disable one of them",
                )
            permission = declared_permission(field)
            graphql_name = field.name or graphene.utils.str_converters.to_camel_case(name)
            if permission is None or (permission == "public" and graphql_name not in PUBLIC_FIELDS):
                raise ModuleConfigurationError(
                    module,
                    f"the GraphQL {kind} field '{name}' declares no permission",
                    "use ProtectedConnectionField / ProtectedField(permission=...) or a "
                    "CoreMutation with a permission",
                )
            owners[name] = module
            fields[name] = field
    # Inheriting from every contribution keeps each module's resolve_* methods.
    return type(kind, tuple(cls for _, cls in contributions), {})


def build_schema() -> graphene.Schema:
    from core.hooks import results_by_module

    # The core's own root types come first, from its plug-in (core/plugin.py).
    queries = results_by_module("coremis_graphql_query")
    mutations = results_by_module("coremis_graphql_mutation")
    extra_types: list[type] = []
    for _, types in results_by_module("coremis_graphql_types"):
        extra_types.extend(types)
    return graphene.Schema(
        query=merge_roots("Query", queries),
        mutation=merge_roots("Mutation", mutations),
        types=extra_types or None,
    )


schema = build_schema()



# The frontends send the same few hundred documents over and over: parsing and the validation
# rules that depend only on the document (GraphQL's own, depth, text literals) are done once
# per document text, about half of a small list request's CPU. Documents are never mutated by
# execution; a document with errors is not kept.
DOCUMENT_CACHE_SIZE = 512


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _parsed(query: str, limit: int) -> DocumentNode:
    return parse(query, max_lexical_tokens=limit, max_comments=limit)


def _document_rules(max_depth: int) -> tuple[Any, ...]:
    return (*specified_rules, depth_limit_validator(max_depth=max_depth), TextLiteralRule)


@lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _valid_documents(schema: Any, query: str, limit: int, max_depth: int) -> bool:
    return not validate(schema, _parsed(query, limit), _document_rules(max_depth))


def _request_independent_errors(schema: Any, document: DocumentNode, query: str, limit: int,
                                max_depth: int) -> list[GraphQLError]:
    if _valid_documents(schema, query, limit, max_depth):
        return []
    return validate(schema, document, _document_rules(max_depth))

# (schema, document text, variables as JSON, limits and introspection answer) that passed the
# request-dependent rules, oldest first; variables larger than this are checked every time.
VARIABLES_CACHE_CHARS = 2048
_passed_requests: dict[tuple[Any, ...], bool] = {}


class RequestRefused(Exception):
    """A request answered with one GraphQL error and no ``data``."""

    def __init__(self, status: int, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extensions = extensions


def graphql_error_response(status: int, code: str, message: str, **extensions: Any) -> JsonResponse:
    return JsonResponse({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]},
                        status=status)


def _refuse_constant(name: str) -> Any:
    raise RequestRefused(400, RequestErrorCode.INVALID_JSON, f"The body contains {name}, which JSON does not allow.")


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestRefused(400, RequestErrorCode.INVALID_JSON, f"The {what} is nested too deeply.") from None
    except ValueError:
        raise RequestRefused(400, RequestErrorCode.INVALID_JSON, f"The {what} is not valid JSON.") from None


def _coded(error: GraphQLError, code: str) -> GraphQLError:
    """The error with ``extensions.code`` set when the rule that raised it set none."""
    if (error.extensions or {}).get("code"):
        return error
    return GraphQLError(error.message, error.nodes, error.source, error.positions, error.path,
                        extensions={**(error.extensions or {}), "code": code})


def _public(error: GraphQLError, request: HttpRequest) -> GraphQLError:
    """The error as a client may see it: typed, and never an exception's own text."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # graphql-core's own refusals of a variable ("was not provided", "got invalid value")
        return _coded(error, CoreErrorCode.INVALID_VALUE) if error.path is None else error
    if isinstance(original, ServiceError):
        return GraphQLError(original.message, error.nodes, path=error.path,
                            extensions={"code": original.code, "field": original.field})
    if error.path is None and isinstance(original, ValueError):
        # A scalar refusing a variable or literal ("badly formed hexadecimal UUID string"):
        # graphql-core's sentence names the variable and the value.
        return GraphQLError(error.message, error.nodes, extensions={"code": CoreErrorCode.INVALID_VALUE})
    # A mutation that already logged it hands over its reference, so it is logged once.
    edge = getattr(original, "coremis_edge", None) or classify(original, path=request.path)
    if edge.code == CoreErrorCode.SERVICE_UNAVAILABLE:
        raise RequestRefused(503, edge.code, edge.message)
    extensions: dict[str, Any] = {"code": edge.code}
    if edge.reference:
        extensions["reference"] = edge.reference
    return GraphQLError(edge.message, error.nodes, path=error.path, extensions=extensions)


# graphene-django decorates its dispatch with ensure_csrf_cookie (method_decorator keeps the
# undecorated one as __wrapped__; without it every answer sets the cookie, as before)
_DISPATCH_WITHOUT_CSRF_COOKIE = getattr(GraphQLView.dispatch, "__wrapped__", GraphQLView.dispatch)


class CoreGraphQLView(GraphQLView):
    """graphene's view with the edge's rules, checked in one parse-and-validate pass:

    - the body is a JSON object whose ``query`` is a string and ``variables`` an object, with
      no NaN/Infinity and only storable text (no NUL, no unpaired surrogate) anywhere;
    - GraphQL's standard rules, the query-depth limit and the cost limit
      (:mod:`core.graphql.cost`), so a costly request is refused before any resolver runs;
    - every error a resolver raised is typed (``extensions.code``); a lost database or Redis
      answers 503; a query's answer larger than ``GRAPHQL_MAX_RESPONSE_BYTES`` is refused.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            if request.method not in ("GET", "POST"):
                raise RequestRefused(405, RequestErrorCode.METHOD_NOT_ALLOWED, "GraphQL is sent with GET or POST.")
            if bearer_token(request) is not None and ACCESS_COOKIE not in request.COOKIES:
                # graphene's dispatch without its ensure_csrf_cookie: a client that sends its
                # token in a header and has no JWT cookie is not a browser frontend logged in by
                # cookie (openIMIS's sends "JWT undefined" beside its cookie), needs no CSRF
                # cookie, and making one (a new secret, masked, set on the answer) cost about
                # 0.2 ms of CPU, 5-9 % of a small list's
                response = _DISPATCH_WITHOUT_CSRF_COOKIE(self, request, *args, **kwargs)
            else:
                response = super().dispatch(request, *args, **kwargs)
            return apply_cookie_changes(request, response)
        except RequestRefused as exc:
            return graphql_error_response(exc.status, exc.code, exc.message, **exc.extensions)

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = self.get_content_type(request)
        if content_type not in ("application/json", "application/graphql"):
            return super().parse_body(request)
        try:
            body = request.body.decode("utf-8")
        except RequestDataTooBig:
            raise RequestRefused(413, RequestErrorCode.REQUEST_TOO_LARGE, "The request body is too large.") from None
        except UnicodeDecodeError:
            raise RequestRefused(400, RequestErrorCode.INVALID_BODY, "The request body is not UTF-8 text.") from None
        if content_type == "application/graphql":
            return {"query": body}
        data = _loads(body, "request body")
        if not isinstance(data, dict):
            raise RequestRefused(400, RequestErrorCode.INVALID_BODY,
                                 'The request body must be a JSON object: {"query": "...", "variables": {...}}.')
        return data

    def get_graphql_params(self, request: HttpRequest, data: Any) -> tuple[Any, Any, Any, Any]:
        query = request.GET.get("query") or data.get("query")
        variables = request.GET.get("variables") or data.get("variables")
        operation_name = request.GET.get("operationName") or data.get("operationName")
        if query is not None and not isinstance(query, str):
            raise RequestRefused(400, RequestErrorCode.INVALID_QUERY, "'query' must be a string holding a GraphQL document.")
        if isinstance(variables, str):
            variables = _loads(variables, "'variables' parameter") if variables.strip() else None
        if variables is not None and not isinstance(variables, dict):
            raise RequestRefused(400, RequestErrorCode.INVALID_VARIABLES, "'variables' must be a JSON object (or null).")
        if operation_name == "null":
            operation_name = None
        if operation_name is not None and not isinstance(operation_name, str):
            raise RequestRefused(400, RequestErrorCode.INVALID_OPERATION_NAME, "'operationName' must be a string (or null).")
        if variables:
            where = unstorable_path(variables)
            if where is not None:
                raise RequestRefused(400, CoreErrorCode.INVALID_CHARACTER,
                                     f"The variable ${where.lstrip('.')} {NOT_TEXT_REASON}; no field accepts it.")
        return query, variables, operation_name, None

    def request_rules_for(self, request: HttpRequest, variables: dict[str, Any] | None) -> tuple[Any, ...]:
        """The rules whose answer depends on the request: its variables (page sizes count in
        the cost) and its caller (introspection)."""
        config = settings.COREMIS
        limits = CostLimits(max_cost=config["GRAPHQL_MAX_COST"], connection_cost=config["GRAPHQL_CONNECTION_COST"],
                            max_page_size=config["MAX_PAGE_SIZE"])
        return (cost_limit_validator(variables, limits), *introspection_rules(getattr(request, "user", None)))

    def _request_errors(self, request: HttpRequest, schema: Any, document: DocumentNode, query: str,
                        variables: dict[str, Any] | None) -> list[GraphQLError]:
        """The request-dependent rules' errors; a document that passed them with the same
        variables, limits and introspection answer passes again without a walk (about 1.5 ms
        of a small list's CPU: the frontends send the same pages over and over)."""
        config = settings.COREMIS
        try:
            key = json.dumps(variables, sort_keys=True, separators=(",", ":")) if variables else ""
        except (TypeError, ValueError):
            key = None
        if key is None or len(key) > VARIABLES_CACHE_CHARS:
            return validate(schema, document, self.request_rules_for(request, variables))
        settings_key = (config["GRAPHQL_MAX_COST"], config["GRAPHQL_CONNECTION_COST"], config["MAX_PAGE_SIZE"],
                        config["GRAPHQL_INTROSPECTION"],
                        introspection_allowed(getattr(request, "user", None)))
        if (schema, query, key, settings_key) in _passed_requests:
            return []
        errors = validate(schema, document, self.request_rules_for(request, variables))
        if not errors:
            _passed_requests[(schema, query, key, settings_key)] = True
            while len(_passed_requests) > DOCUMENT_CACHE_SIZE:
                try:
                    _passed_requests.pop(next(iter(_passed_requests)))
                except (RuntimeError, StopIteration, KeyError):  # another thread trimmed it
                    break
        return errors

    def execute_graphql_request(self, request: HttpRequest, data: Any, query: Any, variables: Any,
                                operation_name: Any, show_graphiql: bool = False) -> ExecutionResult | None:
        if not query:
            if show_graphiql:
                return None
            raise RequestRefused(400, RequestErrorCode.NO_QUERY, "Send the GraphQL document as 'query'.")
        schema = self.schema.graphql_schema
        schema_errors = validate_schema(schema)
        if schema_errors:
            return ExecutionResult(data=None, errors=schema_errors)
        limit = settings.COREMIS["GRAPHQL_MAX_TOKENS"]
        try:
            # Parsing and validating cost CPU before the cost rule can refuse anything: a
            # document's size is bounded first.
            document = _parsed(query, limit)
        except GraphQLError as exc:
            too_large = "tokens" in exc.message or "comments" in exc.message
            return ExecutionResult(errors=[GraphQLError(
                f"The query has more than {limit} tokens; split it into several requests." if too_large
                else exc.message, exc.nodes, exc.source, exc.positions,
                extensions={"code": RequestErrorCode.QUERY_TOO_LARGE if too_large else RequestErrorCode.GRAPHQL_PARSE_FAILED})])
        operation = get_operation_ast(document, operation_name)
        if request.method.lower() == "get" and operation is not None and operation.operation != OperationType.QUERY:
            if show_graphiql:
                return None
            raise RequestRefused(405, RequestErrorCode.METHOD_NOT_ALLOWED,
                                 f"A {operation.operation.value} must be sent with POST.")
        errors = _request_independent_errors(schema, document, query, limit, settings.COREMIS["GRAPHQL_MAX_DEPTH"])
        errors = errors or self._request_errors(request, schema, document, query, variables)
        if errors:
            return ExecutionResult(data=None, errors=[_coded(e, RequestErrorCode.GRAPHQL_VALIDATION_FAILED) for e in errors])
        request.graphql_operation = operation.operation.value if operation else None  # type: ignore[attr-defined]
        try:
            result = execute(schema, document, root_value=self.get_root_value(request),
                             context_value=self.get_context(request), variable_values=variables,
                             operation_name=operation_name, middleware=self.get_middleware(request))
        except Exception as exc:  # outside any resolver: the executor itself
            result = ExecutionResult(errors=[GraphQLError(str(exc), original_error=exc)])
        if result.errors:
            result.errors = [_public(e, request) for e in result.errors]
        return result

    def get_response(self, request: HttpRequest, data: Any, show_graphiql: bool = False) -> tuple[Any, int]:
        result, status = super().get_response(request, data, show_graphiql)
        limit = settings.COREMIS["GRAPHQL_MAX_RESPONSE_BYTES"]
        if (result is not None and len(result) > limit
                and getattr(request, "graphql_operation", None) == OperationType.QUERY.value):
            # A mutation's answer is sent whatever its size: what it did is done.
            raise RequestRefused(
                400, RequestErrorCode.RESPONSE_TOO_LARGE,
                f"The answer would be {len(result):,} bytes, above the limit of {limit:,}: ask for fewer "
                "fields or smaller pages.", size=len(result), limit=limit)
        return result, status
