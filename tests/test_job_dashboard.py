"""The job dashboard (``/django-rq/``) deletes and requeues jobs: staff alone is not enough."""

from __future__ import annotations

from typing import Any

import pytest
from rq import Queue

from core.models import User

pytestmark = pytest.mark.django_db


def staff(make_user: Any, permissions: list[str] | None = None, **kwargs: Any) -> User:
    user = make_user(permissions, **kwargs)
    User.objects.filter(pk=user.pk).update(is_staff=True)
    user.refresh_from_db()
    return user


@pytest.fixture
def queued_job(redis_queue: Any) -> Any:
    # straight through rq: django-rq's own queue would wait for a commit that never comes here
    return Queue(redis_queue.name, connection=redis_queue.connection).enqueue("builtins.print", "left alone")


def delete(client: Any, job: Any) -> Any:
    return client.post(f"/django-rq/queues/0/{job.id}/delete/")


def test_staff_without_the_permission_get_neither_the_dashboard_nor_its_actions(
        client: Any, make_user: Any, redis_queue: Any, queued_job: Any) -> None:
    client.force_login(staff(make_user))
    assert client.get("/django-rq/").status_code == 403
    assert client.get("/django-rq/queues/0/").status_code == 403
    assert client.get("/django-rq/stats.json").status_code == 403
    assert delete(client, queued_job).status_code == 403
    assert client.post(f"/django-rq/queues/0/{queued_job.id}/requeue/").status_code == 403
    assert client.post("/django-rq/queues/0/empty/").status_code == 403
    assert redis_queue.job_ids == [queued_job.id]


def test_a_staff_member_with_core_job_operate_may_delete_a_job(
        client: Any, make_user: Any, redis_queue: Any, queued_job: Any) -> None:
    client.force_login(staff(make_user, ["core.job.operate"]))
    page = client.get("/django-rq/")
    assert page.status_code == 200 and "default" in page.content.decode()
    assert client.get("/django-rq/stats.json").status_code == 200
    assert delete(client, queued_job).status_code == 302
    assert redis_queue.job_ids == []


def test_a_superuser_may_operate_jobs(client: Any, make_user: Any, redis_queue: Any, queued_job: Any) -> None:
    client.force_login(make_user(superuser=True))
    assert client.get("/django-rq/").status_code == 200
    assert delete(client, queued_job).status_code == 302
    assert redis_queue.job_ids == []


def test_the_permission_without_staff_status_and_anonymous_visitors_are_sent_to_log_in(
        client: Any, make_user: Any, queued_job: Any) -> None:
    assert client.get("/django-rq/")["Location"].startswith("/admin/login/")
    client.force_login(make_user(["core.job.operate"]))
    response = client.get("/django-rq/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
