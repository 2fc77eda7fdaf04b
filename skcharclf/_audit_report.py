"""The sections of the label-audit page that :func:`skcharclf.report.make_audit_report`
writes: what was audited, the suspected images beside typical images of their given and
suggested classes, and the copies of one image that carry different labels.

Each section is ``(id, heading, lead text, body HTML)``, as the report's own sections; images
become HTML through the ``thumbnail(image, alt)`` function the report passes in.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Section ids and their names in the page's navigation.
AUDIT_SECTIONS = (
    ("audit-summary", "Audit"),
    ("suspected-labels", "Suspected labels"),
    ("duplicate-conflicts", "Conflicting copies"),
)

Thumbnail = Callable[[np.ndarray, str], str]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def audit_sections(
    audit: Any,
    images: Sequence[np.ndarray],
    thumbnail: Thumbnail,
    *,
    max_shown: int,
    n_typical: int,
) -> list[tuple[str, str, str, str]]:
    """The three sections of the audit page."""
    return [
        _summary(audit),
        _suspects(audit, images, thumbnail, max_shown, n_typical),
        _conflicts(audit, images, thumbnail),
    ]


def typical_images(issues: Any, n_typical: int) -> dict[Any, list[int]]:
    """For each class, its ``n_typical`` images the model is surest of, not suspected."""
    suspected = np.zeros(len(issues.labels), dtype=bool)
    suspected[issues.indices] = True
    labels = issues.labels.tolist()
    chosen: dict[Any, list[int]] = {}
    for i in np.argsort(-issues.self_confidence, kind="stable").tolist():
        members = chosen.setdefault(labels[i], [])
        if not suspected[i] and len(members) < n_typical:
            members.append(i)
    return chosen


def _summary(audit: Any) -> tuple[str, str, str, str]:
    issues = audit.label_issues
    facts = [
        ("images", f"{len(issues.labels):,}"),
        ("classes", f"{len(issues.classes)}"),
        ("folds", f"{audit.n_splits}"),
        ("suspected label errors", f"{issues.n_flagged:,}"),
        ("estimated noise rate", f"{100 * issues.estimated_noise_rate:.1f}%"),
        ("out-of-fold agreement with the given labels", f"{100 * issues.model_agreement:.1f}%"),
        ("groups of copies with different labels", f"{len(audit.duplicate_conflicts)}"),
    ]
    body = [
        '<ul class="facts">',
        *(f"<li><b>{_e(value)}</b> {_e(name)}</li>" for name, value in facts),
        "</ul>",
    ]
    rows = []
    for entry in issues.per_class:
        threshold = "\u2014" if np.isnan(entry.threshold) else f"{entry.threshold:.3f}"
        marker = "" if entry.status == "judged" else ' class="worst"'
        rows.append(
            f"<tr{marker}><td>{_e(entry.label)}</td><td>{entry.n_samples:,}</td>"
            f"<td>{threshold}</td><td>{entry.n_issues_given}</td>"
            f"<td>{entry.n_issues_suggested}</td><td>{_e(entry.status.replace('_', ' '))}</td>"
            f'<td class="anote">{_e(entry.note)}</td></tr>'
        )
    body.append(
        '<h3>Per class</h3><div class="scroll"><table class="metrics"><thead><tr>'
        "<th>class</th><th>images</th><th>threshold</th><th>suspected</th>"
        "<th>suggested into</th><th>judged</th><th>what the audit can say</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table></div>"
    )
    notes = [issues.caution, *audit.notes] if issues.caution else audit.notes
    if notes:
        body.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes))
        body.append("</ul>")
    lead = (
        f"Confident learning on {audit.n_splits}-fold out-of-fold probabilities (filter "
        f"{issues.filter_by}, ranked by {issues.rank_by}). A class's threshold is the mean "
        "probability the model gives the class on its own images; classes in bold have too "
        "few images to be fully judged."
    )
    return "audit-summary", "Label audit", lead, "".join(body)


def _suspects(
    audit: Any, images: Sequence[np.ndarray], thumbnail: Thumbnail, max_shown: int, n_typical: int
) -> tuple[str, str, str, str]:
    issues = audit.label_issues
    heading = "Suspected labels"
    shown = issues.issues[:max_shown]
    lead = (
        f"{issues.n_flagged:,} images are suspected; the {len(shown)} likeliest errors are "
        "shown, lowest score first (the score is the label-quality score: the lower, the "
        "likelier the label is wrong). Beside each, the images the model is surest of in "
        "its given class and in the suggested class: if it looks like the second row, "
        "relabel it; if it looks like neither, drop it."
    )
    if not shown:
        return "suspected-labels", heading, lead, '<p class="note">No suspected label.</p>'
    typical = typical_images(issues, n_typical)
    cards = []
    for issue in shown:
        i = issue.index
        note = f'<div class="mc">{_e(issue.note)}</div>' if issue.note else ""
        cards.append(
            '<div class="acard"><div class="asuspect">'
            + thumbnail(images[i], f"image {i}, labelled {issue.given_label}")
            + f'<div class="mt">#{i}</div><div class="mc">score {issue.score:.3f}</div>'
            f"</div><div class=\"aclasses\">"
            + _class_row("given", issue.given_label, issue.given_probability, typical, images,
                         thumbnail)
            + _class_row("suggested", issue.suggested_label, issue.suggested_probability,
                         typical, images, thumbnail)
            + f"{note}</div></div>"
        )
    return "suspected-labels", heading, lead, '<div class="audit">' + "".join(cards) + "</div>"


def _class_row(
    role: str,
    label: Any,
    probability: float,
    typical: dict[Any, list[int]],
    images: Sequence[np.ndarray],
    thumbnail: Thumbnail,
) -> str:
    thumbs = "".join(thumbnail(images[j], f"typical {label}") for j in typical.get(label, []))
    css = "mt" if role == "given" else "mp"
    return (
        f'<div class="arow"><span class="{css}">{role} <b>{_e(label)}</b> '
        f'<span class="mc">p={probability:.2f}</span></span>'
        f'<span class="thumbs">{thumbs or "<i>no typical image</i>"}</span></div>'
    )


def _conflicts(
    audit: Any, images: Sequence[np.ndarray], thumbnail: Thumbnail
) -> tuple[str, str, str, str]:
    heading = "Copies with different labels"
    lead = (
        "Exact (byte-identical) and near copies of one image that carry different labels: at "
        "most one label is right, or the classes cannot be told apart."
    )
    if not audit.duplicate_conflicts:
        return (
            "duplicate-conflicts",
            heading,
            lead,
            '<p class="note">No copies with different labels.</p>',
        )
    groups = []
    for conflict in audit.duplicate_conflicts:
        cards = "".join(
            '<div class="mcard">'
            + thumbnail(images[i], f"image {i}, labelled {label}")
            + f'<div class="mt">#{i}</div><div>label <b>{_e(label)}</b></div></div>'
            for i, label in zip(conflict.indices, conflict.labels, strict=True)
        )
        groups.append(
            f'<h3>{_e(conflict.kind)} copies</h3><div class="mistakes">{cards}</div>'
        )
    return "duplicate-conflicts", heading, lead, "".join(groups)
