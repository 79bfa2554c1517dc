"""Comments and attachments on tickets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filetype

from core import services as core_services
from core.errors import CoreErrorCode as C
from core.errors import FieldError, ServiceError
from core.models import Upload, User
from modules.grievance import access
from modules.grievance.configuration import config
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import Attachment, Comment, ReporterKind, Ticket, TicketStatus
from modules.grievance.permissions import ATTACHMENT_CREATE, COMMENT_CREATE
from modules.grievance.services import common
from modules.individual.models import Individual
from modules.individual.services import visible_individuals

ATTACHMENT_PURPOSE = "grievance.attachment"
SNIFF_BYTES = 8192


@dataclass
class CommentRequest:
    actor: Any
    ticket: Ticket
    comment: str
    kind: str
    commenter_id: Any
    individual_id: Any
    user_id: Any


def check_create_comment(actor: Any, ticket_id: Any, comment: str, *, commenter_type: str | None = None,
                         commenter_id: Any = None) -> CommentRequest:
    """A comment by the actor (the default), or recorded on behalf of a person or a user."""
    common.require(actor, COMMENT_CREATE)
    ticket = common.ticket_for_change(actor, ticket_id, lock=False)
    if ticket.status == TicketStatus.CLOSED:
        raise ServiceError(E.TICKET_CLOSED, f"Ticket {ticket.code} is closed; reopen it to comment.", "ticketId")
    errors: list[FieldError] = []
    text = common.text(comment, "comment", errors, required=True, limit=20000)
    kind = (commenter_type or "").strip().lower() or (ReporterKind.USER if commenter_id else "")
    individual = user = named = None
    if kind == ReporterKind.USER or not kind:
        target = User.objects.filter(pk=commenter_id, is_active=True).first() if commenter_id else actor
        if target is None or getattr(target, "pk", None) is None:
            if commenter_id:
                errors.append(FieldError("commenterId", E.REPORTER_NOT_FOUND, "No such active user."))
            kind = ""
        else:
            kind, user, named = ReporterKind.USER, target.pk, target.pk
    elif kind == ReporterKind.INDIVIDUAL:
        person = visible_individuals(actor, Individual.objects.filter(pk=commenter_id)).first() if commenter_id else None
        if person is None:
            errors.append(FieldError("commenterId", E.REPORTER_NOT_FOUND, "No such individual is visible to you."))
        else:
            individual = named = person.pk
    elif kind == ReporterKind.BENEFICIARY:
        from modules.grievance import links

        ref = links.beneficiaries([commenter_id]).get(commenter_id) if commenter_id else None
        person = ref.individual_id if ref else None
        if person is None or not visible_individuals(actor, Individual.objects.filter(pk=person)).exists():
            errors.append(FieldError("commenterId", E.REPORTER_NOT_FOUND, "No such beneficiary is visible to you."))
        else:
            individual, named = person, commenter_id
    else:
        errors.append(FieldError("commenterType", E.INVALID_REPORTER_TYPE,
                                 f"'{kind[:30]}' is not a commenter type; use individual, beneficiary or user."))
    common.raise_if(errors)
    return CommentRequest(actor, ticket, text, kind, named, individual, user)


def do_create_comment(request: CommentRequest) -> Comment:
    comment = Comment(ticket=request.ticket, comment=request.comment, commenter_kind=request.kind,
                      commenter_id=request.commenter_id, commenter_individual_id=request.individual_id,
                      commenter_user_id=request.user_id)
    return core_services.create(comment, request.actor)


@dataclass
class AttachmentRequest:
    actor: Any
    ticket: Ticket
    upload: Upload
    title: str
    mime_type: str


def check_create_attachment(actor: Any, ticket_id: Any, upload_id: Any, title: str = "") -> AttachmentRequest:
    """A file the actor uploaded for ``grievance.attachment``, checked by what it holds (not by
    its name or the type the client claimed) against the configured types and size."""
    common.require(actor, ATTACHMENT_CREATE)
    ticket = common.ticket_for_change(actor, ticket_id, lock=False)
    upload = Upload.objects.filter(pk=upload_id, purpose=ATTACHMENT_PURPOSE).first()
    if upload is None or (upload.created_by_id != getattr(actor, "pk", None) and not access.viewer(actor).unrestricted):
        raise ServiceError(C.UPLOAD_NOT_FOUND, f"No upload {upload_id} of yours for '{ATTACHMENT_PURPOSE}'.", "uploadId")
    cfg = config()
    if upload.size > cfg.max_attachment_bytes:
        raise ServiceError(C.FILE_TOO_LARGE, f"Attachments are at most {cfg.max_attachment_bytes / 1048576:g} MiB; "
                                             f"this file is {upload.size / 1048576:.1f} MiB.", "uploadId")
    try:
        with open(upload.stored_path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ServiceError(C.UPLOAD_NOT_FOUND, "The uploaded file is no longer stored; upload it again.",
                           "uploadId") from exc
    kind = filetype.guess(head)
    mime = kind.mime if kind else "unknown"
    if mime not in cfg.attachment_types:
        raise ServiceError(E.FILE_TYPE_NOT_ALLOWED, f"The file holds {'an unrecognised type' if kind is None else mime}"
                                                    f"; attachments may be {', '.join(cfg.attachment_types)}.",
                           "uploadId")
    return AttachmentRequest(actor, ticket, upload, common.text(title, "title", [], limit=255), mime)


def do_create_attachment(request: AttachmentRequest) -> Attachment:
    upload = request.upload
    attachment = Attachment(ticket=request.ticket, upload=upload, title=request.title or upload.filename,
                            filename=Path(upload.filename).name[:255], mime_type=request.mime_type, size=upload.size)
    return core_services.create(attachment, request.actor)


def attachment_for_download(user: Any, attachment_id: Any) -> Attachment:
    """An attachment its ticket's full readers may download (a restricted reader only when
    ``attachments`` is among their visible fields); the read is logged when sensitive."""
    attachment = access.visible_related(user, Attachment.objects.filter(pk=attachment_id)).select_related(
        "ticket", "upload").first()
    if attachment is not None:
        level, visible = access.level_of(access.viewer(user), attachment.ticket.category, attachment.ticket.flags)
        if level == access.FULL or "attachments" in visible:
            access.log_reads(user, [attachment.ticket], "attachment")
            return attachment
    raise ServiceError(E.ATTACHMENT_NOT_FOUND, f"Attachment {attachment_id} does not exist or is not visible to you.",
                       "id")
