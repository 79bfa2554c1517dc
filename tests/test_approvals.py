"""Maker-checker approvals: who may decide, when a task completes, and that an approved action
runs exactly once (retries, concurrent checkers and restarted jobs included)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from core.actors import system_actor
from core.approvals import APPROVALS_CONFIG_SCHEMA, ApprovalAction, ApprovalContext
from core.approvals.actions import approval_actions
from core.approvals.services import (
    approval_config_problems,
    create_task_group,
    needs_approval,
    request_approval,
    resolve_task,
)
from core.errors import ModuleConfigurationError, ServiceError
from core.graphql.fields import touched_by
from core.history import history_of
from core.hooks import hookimpl
from core.jobs import run_job
from core.loader import LoadedModule, get_registry, validate_config
from core.models import ApprovalRoute, ApprovalTask, HistoryEntry, Job, Role, TaskGroup
from core.module import ModuleSpec

MODULE = "testapprovals"
CREATE_ROLE = f"{MODULE}.create_role"
REFUSE = f"{MODULE}.refuse"
CREATE_ROLE_IN_JOB = f"{MODULE}.create_role_in_job"
REFUSE_IN_JOB = f"{MODULE}.refuse_in_job"
GUARDED = f"{MODULE}.guarded"
CRASH = f"{MODULE}.crash"
WAITING = f"{MODULE}.waiting"  # its entity waits for the decision: a rejection ends the wait
PLACED = f"{MODULE}.placed"
ROUTES = {CREATE_ROLE: "checkers", REFUSE: "checkers", CREATE_ROLE_IN_JOB: "checkers",
          REFUSE_IN_JOB: "checkers", GUARDED: "checkers", CRASH: "checkers", WAITING: "checkers",
          PLACED: "checkers"}
REJECTIONS: list[tuple[str, Any, str]] = []
CHECKER_PERMISSIONS = ["core.task.resolve", "core.task.view"]


def create_role(task: ApprovalTask, context: ApprovalContext) -> dict[str, Any]:
    role = Role.objects.create(name=task.data["name"])
    context.progress(1, total=1, stage="role")
    return {"role": str(role.pk)}


def create_role_then_refuse(task: ApprovalTask, context: ApprovalContext) -> None:
    Role.objects.create(name=task.data["name"])
    raise ServiceError("ROLE_REFUSED", "The programme is closed; no role was created.")


def create_role_then_crash(task: ApprovalTask, context: ApprovalContext) -> None:
    Role.objects.create(name=task.data["name"])
    raise RuntimeError("a bug in the action (KeyError-like text a checker must not see)")


class ApprovalsPlugin:
    """Stands for a module that declares approval actions."""

    @hookimpl
    def coremis_approval_actions(self) -> dict[str, ApprovalAction]:
        return {
            CREATE_ROLE: ApprovalAction(
                execute=create_role,
                describe=lambda task: f"Create the role '{task.data['name']}'",
                current_data=lambda task: {"exists": Role.objects.filter(name=task.data["name"]).exists()},
            ),
            REFUSE: ApprovalAction(execute=create_role_then_refuse),
            CREATE_ROLE_IN_JOB: ApprovalAction(execute=create_role, large=True),
            REFUSE_IN_JOB: ApprovalAction(execute=create_role_then_refuse, large=lambda task: True),
            GUARDED: ApprovalAction(execute=create_role, permission="core.role.manage"),
            CRASH: ApprovalAction(execute=create_role_then_crash),
            WAITING: ApprovalAction(execute=create_role, rejected=lambda task, checker, comment: REJECTIONS.append(
                (task.data["name"], checker, comment))),
            # Stands for an action on an entity with a place: a checker's "scope" here is the
            # prefix of the role's name that equals their username.
            PLACED: ApprovalAction(execute=create_role, in_scope=lambda user: Q(data__name__startswith=user.username)),
        }


@pytest.fixture
def approvals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A module named ``testapprovals`` with its actions routed to the task group ``checkers``."""
    registry = get_registry()
    spec = ModuleSpec(name=MODULE, version="0.1.0", app="tests")
    monkeypatch.setattr(registry, "modules", [*registry.modules, LoadedModule(spec, {"approvals": ROUTES})])
    registry.plugin_manager.register(ApprovalsPlugin(), name=MODULE)
    approval_actions.cache_clear()
    yield
    registry.plugin_manager.unregister(name=MODULE)
    approval_actions.cache_clear()


@pytest.fixture
def checkers(make_user: Callable[..., Any]) -> Callable[[int], list[Any]]:
    return lambda n: [make_user(CHECKER_PERMISSIONS) for _ in range(n)]


def group(policy: str, members: list[Any], required: int | None = None, code: str = "checkers") -> TaskGroup:
    return create_task_group(system_actor(), code=code, completion_policy=policy, required_approvals=required,
                             checker_ids=[m.pk for m in members])


def propose(maker: Any, action: str = CREATE_ROLE, name: str = "Approved role",
            entity_id: Any = None) -> ApprovalTask:
    return request_approval(maker, action, "core.Role", entity_id or uuid.uuid4(), {"name": name})


def roles_named(name: str = "Approved role") -> int:
    return Role.all_objects.filter(name=name).count()


def ours(problems: list[str]) -> list[str]:
    """The problems of this test's module (the shipped routes have their own)."""
    return [p for p in problems if MODULE in p]


def refused(code: str, call: Callable[[], Any]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value


pytestmark = pytest.mark.usefixtures("approvals")


def test_a_rejection_tells_the_action_once_and_an_approval_does_not(checkers: Any) -> None:
    REJECTIONS.clear()
    maker, first, second = checkers(3)
    group("ALL", [first, second])
    approved = propose(maker, WAITING, name="Kept")
    resolve_task(first, approved.pk, "APPROVED")
    resolve_task(second, approved.pk, "APPROVED")
    assert roles_named("Kept") == 1 and REJECTIONS == []
    rejected = propose(maker, WAITING, name="Dropped")
    resolve_task(first, rejected.pk, "REJECTED", "Not this one")
    refused("TASK_CLOSED", lambda: resolve_task(second, rejected.pk, "REJECTED"))
    assert REJECTIONS == [("Dropped", first, "Not this one")] and roles_named("Dropped") == 0


# --- configuration and requests --------------------------------------------------------------


def test_the_loader_checks_a_modules_approvals_section_against_the_fragment() -> None:
    schema = {"type": "object", "properties": {"approvals": APPROVALS_CONFIG_SCHEMA}}
    assert validate_config(MODULE, schema, {}) == {"approvals": {}}
    with pytest.raises(ModuleConfigurationError) as bad:
        validate_config(MODULE, schema, {"approvals": {CREATE_ROLE: ""}})
    assert f"$.{MODULE}.approvals" in str(bad.value)


@pytest.mark.django_db
def test_actions_routed_in_modules_config_need_approval_and_others_do_not() -> None:
    assert needs_approval(CREATE_ROLE)
    assert not needs_approval(f"{MODULE}.not_routed")
    assert not needs_approval("nosuchmodule.enroll")


def test_a_route_to_a_missing_task_group_is_refused_with_the_fix(make_user: Any) -> None:
    error = refused("TASK_GROUP_MISSING", lambda: propose(make_user()))
    assert "'checkers'" in error.message and "modules_config.json" in error.message
    assert ours(approval_config_problems()) == [
        f"modules_config.json {MODULE}.approvals['{action}']: task group 'checkers' does not "
        "exist; create it with createTaskGroup or correct the code"
        for action in ROUTES
    ]
    assert not ApprovalTask.objects.exists()


def test_unknown_and_unrouted_actions_are_refused(make_user: Any, checkers: Any) -> None:
    group(TaskGroup.ANY, checkers(1))
    maker = make_user()
    refused("UNKNOWN_APPROVAL_ACTION", lambda: propose(maker, action=f"{MODULE}.no_such_action"))
    get_registry().config(MODULE)["approvals"] = {}
    refused("APPROVAL_NOT_CONFIGURED", lambda: propose(maker))
    assert ours(approval_config_problems()) == []
    assert not ApprovalTask.objects.exists()


def test_a_group_that_could_never_complete_is_refused(make_user: Any, checkers: Any) -> None:
    maker = make_user(CHECKER_PERMISSIONS)
    group(TaskGroup.ANY, [maker])
    refused("NO_ELIGIBLE_CHECKERS", lambda: propose(maker))
    TaskGroup.objects.all().delete()
    group(TaskGroup.N_OF, [maker, *checkers(1)], required=2)
    refused("NO_ELIGIBLE_CHECKERS", lambda: propose(maker))
    assert not ApprovalTask.objects.exists()


def test_the_same_change_cannot_wait_for_approval_twice(make_user: Any, checkers: Any) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    maker, entity = make_user(), uuid.uuid4()
    first = propose(maker, entity_id=entity)
    refused("APPROVAL_PENDING", lambda: propose(maker, name="Other", entity_id=entity))
    resolve_task(checker, first.pk, "APPROVED")
    assert propose(maker, name="Again", entity_id=entity).status == ApprovalTask.ACCEPTED


# --- policies --------------------------------------------------------------------------------


def test_any_one_approval_runs_the_action_as_the_maker(make_user: Any, checkers: Any) -> None:
    first, second = checkers(2)
    group(TaskGroup.ANY, [first, second])
    maker = make_user()
    task = propose(maker)
    assert (task.status, task.maker_id, task.module, roles_named()) == (
        ApprovalTask.ACCEPTED, maker.pk, MODULE, 0)

    task = resolve_task(second, task.pk, "APPROVED", "checked the list")
    assert task.status == ApprovalTask.COMPLETED
    assert task.executed_at is not None and task.error == ""
    role = Role.objects.get(name="Approved role")
    assert task.result == {"role": str(role.pk)}
    assert list(task.decisions.values_list("checker_id", "decision", "comment")) == [
        (second.pk, "APPROVED", "checked the list")]
    created = history_of("core_role", role.pk)[0]
    assert created["user_id"] == maker.pk
    assert created["context"]["approval_task"] == str(task.pk)
    assert created["context"]["approved_by"] == str(second.pk)


def test_all_needs_every_checker_except_the_maker(make_user: Any, checkers: Any) -> None:
    maker = make_user(CHECKER_PERMISSIONS)
    a, b, c = checkers(3)
    group(TaskGroup.ALL, [maker, a, b, c])
    task = propose(maker)
    for checker in (a, b):
        task = resolve_task(checker, task.pk, "APPROVED")
        assert task.status == ApprovalTask.ACCEPTED
        assert roles_named() == 0
    task = resolve_task(c, task.pk, "APPROVED")
    assert task.status == ApprovalTask.COMPLETED
    assert roles_named() == 1


def test_n_of_counts_distinct_approvals(make_user: Any, checkers: Any) -> None:
    a, b, c = checkers(3)
    group(TaskGroup.N_OF, [a, b, c], required=2)
    task = propose(make_user())

    task = resolve_task(a, task.pk, "APPROVED")
    assert (task.status, roles_named()) == (ApprovalTask.ACCEPTED, 0)
    refused("ALREADY_DECIDED", lambda: resolve_task(a, task.pk, "APPROVED"))
    assert (ApprovalTask.objects.get(pk=task.pk).status, roles_named()) == (ApprovalTask.ACCEPTED, 0)

    task = resolve_task(b, task.pk, "APPROVED")
    assert (task.status, roles_named()) == (ApprovalTask.COMPLETED, 1)
    refused("TASK_CLOSED", lambda: resolve_task(c, task.pk, "APPROVED"))
    assert task.decisions.count() == 2


def test_any_rejection_fails_the_task_and_nothing_runs(make_user: Any, checkers: Any) -> None:
    a, b, c = checkers(3)
    group(TaskGroup.N_OF, [a, b, c], required=2)
    task = propose(make_user())
    resolve_task(a, task.pk, "APPROVED")
    task = resolve_task(b, task.pk, "REJECTED", "wrong household")
    assert task.status == ApprovalTask.FAILED
    assert task.executed_at is None and task.result is None
    refused("TASK_CLOSED", lambda: resolve_task(c, task.pk, "APPROVED"))
    assert roles_named() == 0


# --- who may decide --------------------------------------------------------------------------


def test_the_maker_cannot_approve_their_own_task(make_user: Any, checkers: Any) -> None:
    maker = make_user(CHECKER_PERMISSIONS)
    group(TaskGroup.ANY, [maker, *checkers(1)])
    task = propose(maker)
    refused("SELF_APPROVAL", lambda: resolve_task(maker, task.pk, "APPROVED"))
    task.refresh_from_db()
    assert (task.status, task.decisions.count(), roles_named()) == (ApprovalTask.ACCEPTED, 0, 0)


def test_only_checkers_of_the_group_decide(make_user: Any, checkers: Any) -> None:
    member, outsider = checkers(2)
    group(TaskGroup.ANY, [member])
    group(TaskGroup.ANY, [outsider], code="other-group")
    task = propose(make_user())
    refused("NOT_A_CHECKER", lambda: resolve_task(outsider, task.pk, "APPROVED"))
    no_permission = make_user()
    refused("PERMISSION_DENIED", lambda: resolve_task(no_permission, task.pk, "APPROVED"))
    assert (ApprovalTask.objects.get(pk=task.pk).status, roles_named()) == (ApprovalTask.ACCEPTED, 0)


def test_an_action_can_require_a_permission_of_its_checkers(make_user: Any, checkers: Any) -> None:
    plain = checkers(1)[0]
    trusted = make_user([*CHECKER_PERMISSIONS, "core.role.manage"])
    group(TaskGroup.ANY, [plain, trusted])
    task = propose(make_user(), action=GUARDED)
    refused("PERMISSION_DENIED", lambda: resolve_task(plain, task.pk, "APPROVED"))
    assert resolve_task(trusted, task.pk, "APPROVED").status == ApprovalTask.COMPLETED


# --- exactly once ----------------------------------------------------------------------------


def test_a_retried_approval_does_not_run_the_action_again(make_user: Any, checkers: Any) -> None:
    a, b = checkers(2)
    group(TaskGroup.ANY, [a, b])
    task = propose(make_user())
    resolve_task(a, task.pk, "APPROVED")
    error = refused("TASK_CLOSED", lambda: resolve_task(a, task.pk, "APPROVED"))
    assert "COMPLETED" in error.message
    refused("TASK_CLOSED", lambda: resolve_task(b, task.pk, "APPROVED"))
    assert roles_named() == 1


def approve_together(checkers: list[Any], task_id: Any) -> list[str]:
    """Each checker approves in their own thread and connection, all released at once."""
    start = threading.Barrier(len(checkers))
    outcomes: list[str] = []

    def approve(checker: Any) -> None:
        try:
            start.wait()
            outcomes.append(resolve_task(checker, task_id, "APPROVED").status)
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(c,)) for c in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_under_any_run_the_action_once(make_user: Any, checkers: Any) -> None:
    pair = checkers(2)
    group(TaskGroup.ANY, pair)
    task = propose(make_user())
    assert approve_together(pair, task.pk) == ["COMPLETED", "TASK_CLOSED"]
    assert roles_named() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_last_approvals_under_all_complete_the_task_once(make_user: Any, checkers: Any) -> None:
    trio = checkers(3)
    group(TaskGroup.ALL, trio)
    task = propose(make_user())
    resolve_task(trio[0], task.pk, "APPROVED")
    # Both see the other's approval or neither does; the row lock makes it the former.
    assert approve_together(trio[1:], task.pk) == ["ACCEPTED", "COMPLETED"]
    assert ApprovalTask.objects.get(pk=task.pk).status == ApprovalTask.COMPLETED
    assert roles_named() == 1


def test_a_failing_action_leaves_the_task_in_error_and_changes_nothing(make_user: Any, checkers: Any) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    task = propose(make_user(), action=REFUSE)
    task = resolve_task(checker, task.pk, "APPROVED")
    assert task.status == ApprovalTask.ERROR
    assert task.error == "The programme is closed; no role was created."
    assert task.executed_at is None
    assert roles_named() == 0
    assert task.decisions.get().checker_id == checker.pk
    refused("TASK_CLOSED", lambda: resolve_task(checker, task.pk, "APPROVED"))


# --- large actions run in a background job ---------------------------------------------------


def test_a_large_action_runs_once_in_a_background_job(
    make_user: Any, checkers: Any, run_jobs: Any, django_capture_on_commit_callbacks: Any
) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    task = propose(make_user(), action=CREATE_ROLE_IN_JOB)
    with django_capture_on_commit_callbacks(execute=True):
        task = resolve_task(checker, task.pk, "APPROVED")
    assert task.status == ApprovalTask.COMPLETED
    assert task.job is not None and task.job.kind == "core.approval_execute"
    assert (task.executed_at, roles_named()) == (None, 0)  # not inside the approving request

    assert run_jobs() == 1
    task.refresh_from_db()
    job = Job.objects.get(pk=task.job_id)
    assert (job.state, job.created_by_id, job.processed, job.total) == (Job.SUCCEEDED, checker.pk, 1, 1)
    assert task.executed_at is not None
    assert task.result == {"role": str(Role.objects.get(name="Approved role").pk)}

    # A job run again (its earlier run was lost, see core.jobs.sweep) does not run the action again.
    Job.objects.filter(pk=job.pk).update(state=Job.QUEUED)
    run_job(str(job.pk))
    assert roles_named() == 1


def test_a_large_action_that_fails_leaves_the_task_in_error_and_the_job_failed(
    make_user: Any, checkers: Any, run_jobs: Any, django_capture_on_commit_callbacks: Any
) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    task = propose(make_user(), action=REFUSE_IN_JOB)
    with django_capture_on_commit_callbacks(execute=True):
        resolve_task(checker, task.pk, "APPROVED")
    run_jobs()
    task.refresh_from_db()
    assert (task.status, task.error) == (ApprovalTask.ERROR, "The programme is closed; no role was created.")
    assert Job.objects.get(pk=task.job_id).state == Job.FAILED
    assert roles_named() == 0


# --- GraphQL ---------------------------------------------------------------------------------

RESOLVE = """
mutation ($id: ID!, $status: String!, $key: String) {
  resolveTask(input: {id: $id, businessStatus: $status, clientMutationId: $key}) {
    errors { field code message }
    task { id uuid status source businessEvent businessStatus executorActionEvent entityId
           businessData description currentEntityData
           taskGroup { code completionPolicy taskexecutorSet { totalCount edges { node { user { id username } } } } } }
  }
}
"""


def test_resolve_task_takes_the_openimis_business_status(gql: Any, make_user: Any, checkers: Any) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    task = propose(make_user())
    status = '{"%s": "APPROVED"}' % checker.pk
    data = gql(checker).ok(RESOLVE, {"id": str(task.pk), "status": status})["resolveTask"]
    assert data["errors"] == []
    node = data["task"]
    assert node["status"] == "COMPLETED"
    assert node["businessStatus"] == f'{{"{checker.pk}": "APPROVED"}}'
    assert (node["source"], node["businessEvent"], node["executorActionEvent"]) == (MODULE, CREATE_ROLE, "approve")
    assert node["businessData"] == '{"name": "Approved role"}'
    assert node["description"] == "Create the role 'Approved role'"
    assert node["currentEntityData"] == '{"exists": true}'
    assert node["taskGroup"]["completionPolicy"] == "ANY"
    # openIMIS's task page decodes the checker's Relay id and compares it with current_user's id
    executor = node["taskGroup"]["taskexecutorSet"]["edges"][0]["node"]["user"]
    assert base64.b64decode(executor["id"]).decode() == f"UserGQLType:{checker.pk}"
    assert roles_named() == 1


# The openIMIS task page (tasks_management) offers approve and reject only to a checker of the
# task's group (the decoded Relay id of an executor equals current_user's id) and only while the
# task is ACCEPTED; it draws a "current data" row, which for a payroll is a payroll page that
# leaves the task, whenever jsonExt is not empty.
OPENIMIS_TASK = """query ($id: ID) { task(id: $id) { edges { node { id status source businessData jsonExt
  businessStatus taskGroup { id taskexecutorSet { edges { node { id user { id } } } } } } } } }"""


def test_a_new_task_is_one_the_openimis_task_page_lets_its_checker_decide(
        gql: Any, client: Any, make_user: Any, checkers: Any) -> None:
    (checker,) = checkers(1)
    group(TaskGroup.ANY, [checker])
    task = propose(make_user())
    node = gql(checker).ok(OPENIMIS_TASK, {"id": str(task.pk)})["task"]["edges"][0]["node"]
    assert (node["status"], node["jsonExt"], node["businessStatus"]) == ("ACCEPTED", None, "{}")
    executors = [base64.b64decode(e["node"]["user"]["id"]).decode().split(":", 1)[1]
                 for e in node["taskGroup"]["taskexecutorSet"]["edges"]]
    token = gql(checker).token()
    me = client.get("/api/core/users/current_user/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert executors == [me["id"]]
    assert ApprovalTask.objects.get(pk=task.pk).status == ApprovalTask.ACCEPTED


def test_the_task_a_mutation_touched_is_read_back_by_its_client_mutation_id(
        gql: Any, make_user: Any, checkers: Any) -> None:
    # openIMIS's task page reads the task again with task(clientMutationId: …) after resolveTask
    a, b = checkers(2)
    group(TaskGroup.ANY, [a, b])
    task, other = propose(make_user()), propose(make_user(), name="Other role")
    status = '{"%s": "APPROVED"}' % a.pk
    assert gql(a).ok(RESOLVE, {"id": str(task.pk), "status": status, "key": "k-1"})["resolveTask"]["errors"] == []
    read = 'query ($key: String) { task(clientMutationId: $key) { totalCount edges { node { uuid status } } } }'
    assert gql(a).ok(read, {"key": "k-1"})["task"] == {
        "totalCount": 1, "edges": [{"node": {"uuid": str(task.pk), "status": "COMPLETED"}}]}
    # another checker's key, or one never sent, finds nothing; the other task is untouched
    assert gql(b).ok(read, {"key": "k-1"})["task"]["totalCount"] == 0
    assert gql(a).ok(read, {"key": "never-sent"})["task"]["totalCount"] == 0
    assert ApprovalTask.objects.get(pk=other.pk).status == ApprovalTask.ACCEPTED
    # a list of another table, with integer keys, leaves the task's key out instead of failing
    caller = SimpleNamespace(context=SimpleNamespace(user=a))
    assert touched_by(caller, "k-1", HistoryEntry) == [] and touched_by(caller, "k-1", ApprovalTask) == [task.pk]


def test_resolve_task_refuses_a_decision_for_someone_else(gql: Any, make_user: Any, checkers: Any) -> None:
    a, b = checkers(2)
    group(TaskGroup.ANY, [a, b])
    task = propose(make_user())
    for status in ('{"%s": "APPROVED"}' % b.pk, "MAYBE", '{"x": '):
        data = gql(a).ok(RESOLVE, {"id": str(task.pk), "status": status})["resolveTask"]
        assert data["task"] is None and data["errors"][0]["field"] == "businessStatus"
    assert task.decisions.count() == 0
    # FAILED is openIMIS for a rejection; a Relay id of the task is accepted too.
    node = gql(a).ok(RESOLVE, {"id": _relay_id(gql, a), "status": '{"%s": "FAILED"}' % a.pk})
    assert node["resolveTask"]["task"]["status"] == "FAILED"
    assert node["resolveTask"]["task"]["businessStatus"] == f'{{"{a.pk}": "FAILED"}}'
    assert roles_named() == 0


def _relay_id(gql: Any, user: Any) -> str:
    return gql(user).ok("{ task { edges { node { id } } } }")["task"]["edges"][0]["node"]["id"]


def test_resolve_task_answers_self_approval_as_a_typed_error(gql: Any, make_user: Any, checkers: Any) -> None:
    maker = make_user([*CHECKER_PERMISSIONS, "core.mutation_log.view"])
    group(TaskGroup.ANY, [maker, *checkers(1)])
    task = propose(maker)
    data = gql(maker).ok(RESOLVE, {"id": str(task.pk), "status": "APPROVED", "key": "r-1"})["resolveTask"]
    assert [e["code"] for e in data["errors"]] == ["SELF_APPROVAL"]
    logs = gql(maker).ok('{ mutationLogs(clientMutationId: "r-1") { edges { node { status error } } } }')
    assert logs["mutationLogs"]["edges"][0]["node"]["status"] == 1


def test_an_approved_action_that_crashes_is_a_failure_for_the_checker(
    gql: Any, make_user: Any, checkers: Any
) -> None:
    checker = make_user([*CHECKER_PERMISSIONS, "core.mutation_log.view"])
    group(TaskGroup.ANY, [checker])
    task = propose(make_user(), action=CRASH)
    data = gql(checker).ok(RESOLVE, {"id": str(task.pk), "status": "APPROVED", "key": "crash-1"})["resolveTask"]
    # The decision stands and the task is ERROR; the answer says the action failed, in words.
    assert [e["code"] for e in data["errors"]] == ["ACTION_FAILED"]
    assert data["task"]["status"] == "ERROR"
    message = data["errors"][0]["message"]
    assert "RuntimeError" not in message and "KeyError" not in message and str(task.pk) in message
    task.refresh_from_db()
    assert (task.status, task.executed_at, roles_named()) == (ApprovalTask.ERROR, None, 0)
    assert task.decisions.get().checker_id == checker.pk
    logs = gql(checker).ok('{ mutationLogs(clientMutationId: "crash-1") { edges { node { status error } } } }')
    node = logs["mutationLogs"]["edges"][0]["node"]
    assert node["status"] == 1 and json.loads(node["error"])[0]["code"] == "ACTION_FAILED"
    # Sent again, the same key answers the same failure.
    again = gql(checker).ok(RESOLVE, {"id": str(task.pk), "status": "APPROVED", "key": "crash-1"})["resolveTask"]
    assert [e["code"] for e in again["errors"]] == ["ACTION_FAILED"] and again["task"]["status"] == "ERROR"


TASKS = "query ($status: TaskStatus) { task(status: $status, orderBy: [\"-dateCreated\"]) { totalCount edges { node { uuid status maker { username } } } } }"


def test_task_list_shows_what_one_made_or_may_decide(gql: Any, make_user: Any, checkers: Any) -> None:
    checker, stranger = checkers(2)
    auditor = make_user(["core.task.view", "core.task.view_all"])
    group(TaskGroup.ANY, [checker])
    maker = make_user(["core.task.view"])
    mine = propose(maker, name="mine")
    other = propose(make_user(), name="other")
    resolve_task(checker, other.pk, "APPROVED")

    def uuids(user: Any, status: str | None = None) -> set[str]:
        edges = gql(user).ok(TASKS, {"status": status})["task"]["edges"]
        return {e["node"]["uuid"] for e in edges}

    assert uuids(maker) == {str(mine.pk)}
    assert uuids(checker) == {str(mine.pk), str(other.pk)}
    assert uuids(checker, "COMPLETED") == {str(other.pk)}
    assert uuids(stranger) == set()
    assert uuids(auditor) == {str(mine.pk), str(other.pk)}


def test_a_checker_sees_and_decides_only_tasks_in_their_scope(gql: Any, make_user: Any, checkers: Any) -> None:
    near, far = checkers(2)
    auditor = make_user(["core.task.view", "core.task.view_all"])
    group(TaskGroup.ANY, [near, far])
    maker = make_user(["core.task.view"])
    here = propose(maker, PLACED, name=f"{near.username} role")
    there = propose(maker, PLACED, name=f"{far.username} role")
    unplaced = propose(maker, name="unplaced")

    def uuids(user: Any) -> set[str]:
        return {e["node"]["uuid"] for e in gql(user).ok(TASKS, {"status": None})["task"]["edges"]}

    assert uuids(near) == {str(here.pk), str(unplaced.pk)}
    assert uuids(far) == {str(there.pk), str(unplaced.pk)}
    assert uuids(maker) == uuids(auditor) == {str(here.pk), str(there.pk), str(unplaced.pk)}
    # Deciding on a task out of scope: it does not exist for this checker, and nothing changes.
    refused("NOT_FOUND", lambda: resolve_task(near, there.pk, "APPROVED"))
    there.refresh_from_db()
    assert there.is_open and roles_named(f"{far.username} role") == 0
    resolve_task(near, here.pk, "APPROVED")
    assert roles_named(f"{near.username} role") == 1


def test_the_task_list_costs_the_same_queries_for_one_row_or_many(gql: Any, make_user: Any, checkers: Any) -> None:
    a, b = checkers(2)
    group(TaskGroup.N_OF, [a, b], required=2)
    query = """{ task { totalCount edges { node { status maker { username } businessStatus
      decisions { decision checker { username } } job { state }
      taskGroup { code checkers { username } taskexecutorSet { edges { node { user { username } } } } } } } } }"""

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            gql(a).ok(query)
        return len(captured)

    resolve_task(a, propose(make_user(), name="r0").pk, "APPROVED")
    one = count_queries()
    for i in range(1, 6):
        resolve_task(a, propose(make_user(), name=f"r{i}").pk, "APPROVED")
    assert count_queries() == one


CREATE_GROUP = """
mutation ($input: CreateTaskGroupMutationInput!) {
  createTaskGroup(input: $input) { errors { field code } taskGroup { uuid version code completionPolicy requiredApprovals checkers { uuid } } }
}
"""
UPDATE_GROUP = """
mutation ($input: UpdateTaskGroupMutationInput!) {
  updateTaskGroup(input: $input) { errors { field code } taskGroup { version completionPolicy requiredApprovals checkers { uuid } } }
}
"""


def test_task_groups_are_managed_over_graphql(gql: Any, make_user: Any, checkers: Any) -> None:
    manager = make_user(["core.task_group.manage", "core.task_group.search"])
    a, b, c = checkers(3)
    too_many = {"code": "payroll", "completionPolicy": "N_OF", "requiredApprovals": 3,
                "userIds": [str(a.pk), str(b.pk)]}
    data = gql(manager).ok(CREATE_GROUP, {"input": too_many})["createTaskGroup"]
    assert data["errors"] == [{"field": "requiredApprovals", "code": "NOT_ENOUGH_CHECKERS"}]

    created = gql(manager).ok(CREATE_GROUP, {"input": {**too_many, "requiredApprovals": 2}})
    group_ = created["createTaskGroup"]["taskGroup"]
    assert (group_["completionPolicy"], group_["requiredApprovals"]) == ("N_OF", 2)
    taken = gql(manager).ok(CREATE_GROUP, {"input": {**too_many, "requiredApprovals": 2}})
    assert taken["createTaskGroup"]["errors"] == [{"field": "code", "code": "TASK_GROUP_CODE_TAKEN"}]

    change = {"id": group_["uuid"], "version": 1, "completionPolicy": "ANY", "userIds": [str(c.pk)]}
    updated = gql(manager).ok(UPDATE_GROUP, {"input": change})["updateTaskGroup"]["taskGroup"]
    assert updated == {"version": 2, "completionPolicy": "ANY", "requiredApprovals": None,
                       "checkers": [{"uuid": str(c.pk)}]}
    stale = gql(manager).ok(UPDATE_GROUP, {"input": {**change, "name": "Payroll"}})["updateTaskGroup"]
    assert stale["errors"] == [{"field": "version", "code": "STALE_VERSION"}]

    listed = gql(manager).ok('{ taskGroup(code: "payroll") { totalCount edges { node { name } } } }')
    assert listed["taskGroup"]["totalCount"] == 1


# --- routes at run time ----------------------------------------------------------------------

SET_ROUTE = """mutation($i: SetApprovalRouteMutationInput!) { setApprovalRoute(input: $i) {
    errors { field code message }
    route { action module needsApproval taskGroupCode source reason version userUpdated { username } } } }"""
LIST_ROUTES = "{ approvalRoutes { action needsApproval taskGroupCode source taskGroup { code } } }"


def test_routes_change_at_run_time_and_every_change_is_in_history(gql: Any, make_user: Any, checkers: Any) -> None:
    group(TaskGroup.ANY, checkers(1))
    group(TaskGroup.ANY, checkers(1), code="others")
    manager = make_user(["core.approval_route.manage"])
    client = gql(manager)
    listed = {r["action"]: r for r in client.ok(LIST_ROUTES)["approvalRoutes"]}
    assert listed[CREATE_ROLE] == {"action": CREATE_ROLE, "needsApproval": True, "taskGroupCode": "checkers",
                                   "source": "CONFIG", "taskGroup": {"code": "checkers"}}

    unrouted = client.ok(SET_ROUTE, {"i": {"action": CREATE_ROLE, "taskGroupCode": None,
                                           "reason": "the pilot ends"}})["setApprovalRoute"]
    assert unrouted == {"errors": [], "route": {
        "action": CREATE_ROLE, "module": MODULE, "needsApproval": False, "taskGroupCode": None, "source": "RUNTIME",
        "reason": "the pilot ends", "version": 1, "userUpdated": {"username": manager.username}}}
    assert not needs_approval(CREATE_ROLE)  # at once, without a restart
    refused("APPROVAL_NOT_CONFIGURED", lambda: propose(make_user()))

    rerouted = client.ok(SET_ROUTE, {"i": {"action": CREATE_ROLE, "taskGroupCode": "others",
                                           "reason": "audit asks for it"}})["setApprovalRoute"]
    assert rerouted["route"]["taskGroupCode"] == "others" and rerouted["route"]["version"] == 2
    assert propose(make_user()).task_group.code == "others"

    history = client.ok("""{ approvalRouteHistory(orderBy: ["id"]) { edges { node { operation data userId
        context } } } }""")["approvalRouteHistory"]["edges"]
    assert [(e["node"]["operation"], json.loads(e["node"]["data"])["reason"]) for e in history] == [
        ("I", "the pilot ends"), ("U", "audit asks for it")]
    assert {e["node"]["userId"] for e in history} == {str(manager.pk)}
    assert all(json.loads(e["node"]["context"])["mutation"] for e in history)


@pytest.mark.parametrize("payload, code", [
    ({"action": f"{MODULE}.no_such_action", "taskGroupCode": "checkers"}, "UNKNOWN_APPROVAL_ACTION"),
    ({"action": CREATE_ROLE, "taskGroupCode": "nobody"}, "TASK_GROUP_MISSING"),
    ({"action": CREATE_ROLE, "taskGroupCode": "empty"}, "NO_ELIGIBLE_CHECKERS"),
    ({"action": CREATE_ROLE, "taskGroupCode": None, "reason": " "}, "REQUIRED"),
])
def test_a_route_that_could_not_work_is_refused(gql: Any, make_user: Any, checkers: Any,
                                                payload: dict[str, Any], code: str) -> None:
    group(TaskGroup.ANY, checkers(1))
    create_task_group(system_actor(), code="empty", completion_policy=TaskGroup.ANY)
    result = gql(make_user(["core.approval_route.manage"])).ok(
        SET_ROUTE, {"i": {"reason": "because", **payload}})["setApprovalRoute"]
    assert [e["code"] for e in result["errors"]] == [code] and result["route"] is None
    assert not ApprovalRoute.all_objects.exists() and needs_approval(CREATE_ROLE)


def test_only_a_user_with_the_right_routes_approvals(gql: Any, make_user: Any) -> None:
    client = gql(make_user(["core.task_group.manage", "core.task.view", "core.task.resolve"]))
    attempt = client.execute(SET_ROUTE, {"i": {"action": CREATE_ROLE, "taskGroupCode": None, "reason": "x"}})
    assert attempt["errors"][0]["extensions"] == {"code": "PERMISSION_DENIED", "permission": "core.approval_route.manage"}
    assert client.execute(LIST_ROUTES)["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert not ApprovalRoute.all_objects.exists() and needs_approval(CREATE_ROLE)


def test_listing_task_groups_is_its_own_right_and_roles_that_managed_them_keep_it(gql: Any, make_user: Any,
                                                                                   checkers: Any) -> None:
    """A checker's task screen lists task groups (its group picker): core.task_group.search
    (openIMIS's 190001) lets them, without the right to change groups."""
    import importlib

    from django.apps import apps

    from core.models import Role

    group(TaskGroup.ANY, checkers(1))
    reader = gql(make_user(["core.task.view", "core.task_group.search"]))
    assert reader.ok("{ taskGroup { totalCount edges { node { code } } } }")["taskGroup"]["totalCount"] == 1
    refused = reader.execute(CREATE_GROUP, {"input": {"code": "x", "completionPolicy": "ANY", "userIds": []}})
    assert refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    viewer = gql(make_user(["core.task.view"])).execute("{ taskGroup { totalCount } }")
    assert viewer["errors"][0]["extensions"] == {"code": "PERMISSION_DENIED", "permission": "core.task_group.search"}

    managing = Role.objects.create(name="Group admins", permissions=["core.task_group.manage", "core.user.view"])
    other = Role.objects.create(name="Others", permissions=["core.user.view"])
    importlib.import_module("core.migrations.0019_task_group_search").grant_search(apps, None)
    importlib.import_module("core.migrations.0019_task_group_search").grant_search(apps, None)  # once only
    managing.refresh_from_db()
    other.refresh_from_db()
    assert managing.permissions == ["core.task_group.manage", "core.user.view", "core.task_group.search"]
    assert other.permissions == ["core.user.view"]
