"""Attachments: uploaded like any file, then checked by what they hold and by size; downloaded
only by those who may read the ticket."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def upload(client: Any, user: Any, name: str, content: bytes) -> str:
    from core.auth.tokens import issue

    response = client.post("/api/upload?purpose=grievance.attachment", {"file": SimpleUploadedFile(name, content)},
                           HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 201, response.content
    return response.json()["uploadId"]


def attach(gql: Any, user: Any, ticket: Any, upload_id: str, mutate: Any) -> dict[str, Any]:
    return mutate(gql(user), "createTicketAttachment", "attachment { id url mimeType }",
                  f'ticketId: "{ticket.pk}" uploadId: "{upload_id}" title: "Pièce"')


def test_a_pdf_is_attached_and_downloaded_by_readers_only(client: Any, gql: Any, admin_user: Any, make_ticket: Any,
                                                          places: Any, staff: Any, grievance_mutate: Any,
                                                          settings: Any, tmp_path: Any) -> None:
    from core.auth.tokens import issue

    settings.MEDIA_ROOT = str(tmp_path)
    ticket = make_ticket(places, category="vbg", location="H111")
    made = attach(gql, admin_user, ticket, upload(client, admin_user, "plainte.pdf", PDF), grievance_mutate)
    assert made["errors"] == [] and made["attachment"]["mimeType"] == "application/pdf"
    url = made["attachment"]["url"]
    worker, officer = staff("GBV case worker", at="H111"), staff("Grievance officer", at="H111")
    ok = client.get(url, HTTP_AUTHORIZATION=f"Bearer {issue(worker).token}")
    assert ok.status_code == 200 and b"".join(ok.streaming_content) == PDF
    hidden = client.get(url, HTTP_AUTHORIZATION=f"Bearer {issue(officer).token}")
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "ATTACHMENT_NOT_FOUND"


def test_the_type_is_read_from_the_content_not_the_name(client: Any, gql: Any, admin_user: Any, make_ticket: Any,
                                                        places: Any, grievance_mutate: Any, settings: Any,
                                                        tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    ticket = make_ticket(places, category="autre", location="H111")
    disguised = upload(client, admin_user, "photo.pdf", b"MZ\x90\x00" + b"\x00" * 100)  # a Windows program
    refused = attach(gql, admin_user, ticket, disguised, grievance_mutate)
    assert [e["code"] for e in refused["errors"]] == ["FILE_TYPE_NOT_ALLOWED"] and refused["attachment"] is None
    assert attach(gql, admin_user, ticket, upload(client, admin_user, "x.png", PNG), grievance_mutate)["errors"] == []


def test_too_large_is_refused(client: Any, gql: Any, admin_user: Any, make_ticket: Any, places: Any,
                              grievance_mutate: Any, settings: Any, tmp_path: Any) -> None:
    from core.loader import module_config
    from modules.grievance.configuration import config

    settings.MEDIA_ROOT = str(tmp_path)
    ticket = make_ticket(places, category="autre", location="H111")
    raw = module_config("grievance")
    shipped = raw["attachments"]
    raw["attachments"] = {**shipped, "max_mb": 0.01}
    config.cache_clear()
    try:
        big = upload(client, admin_user, "big.pdf", PDF + b" " * 20000)
        refused = attach(gql, admin_user, ticket, big, grievance_mutate)
    finally:
        raw["attachments"] = shipped
        config.cache_clear()
    assert [e["code"] for e in refused["errors"]] == ["FILE_TOO_LARGE"]
