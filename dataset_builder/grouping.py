"""Group cleaned comments into one `Subject` per galaxy."""

from __future__ import annotations

from collections.abc import Iterable

from .records import Comment, Reject, Subject


def _add_tags(subject: Subject, tags: Iterable[str]) -> None:
    for tag in tags:
        if tag and tag not in subject.tags:
            subject.tags.append(tag)


def group_by_subject(comments: Iterable[Comment | Reject], rejects: list[Reject]) -> dict[str, Subject]:
    """subject id -> Subject, in first-seen order; Rejects in the stream are appended to `rejects`.

    A subject's tags are the union of its comments' tags (first-seen order), plus the tags of
    comments that cleaning rejected (e.g. a comment that was only "#merger #ring"): the tags are
    still volunteers' words about that galaxy. A subject known only through such tags has no
    comments. `image_ref` is the first image URL any of its comments carried.
    """
    subjects: dict[str, Subject] = {}
    for item in comments:
        if isinstance(item, Reject):
            rejects.append(item)
            subject_id = getattr(item, "subject_id", "")
            tags = getattr(item, "tags", None)
            if subject_id and tags:
                subject = subjects.get(subject_id)
                if subject is None:
                    subject = subjects[subject_id] = Subject(subject_id=subject_id, source=f"talk:{item.source}")
                _add_tags(subject, tags)
                if subject.image_ref is None and getattr(item, "image_url", None):
                    subject.image_ref = item.image_url
            continue
        subject = subjects.get(item.subject_id)
        if subject is None:
            subject = subjects[item.subject_id] = Subject(subject_id=item.subject_id, source=f"talk:{item.source}")
        subject.comments.append(item)
        _add_tags(subject, item.tags)
        if subject.image_ref is None and item.image_url:
            subject.image_ref = item.image_url
    return subjects
