"""The data-quality review workspace's engine (docs/review.md): rule-generated issues, the
per-site summary, recruitment by week, review marks and queries with role checks and the
audit trail. Pure ``core``: no dash, plotly or flask; never reads the randomisation.

- :mod:`core.review.forms`: the review forms (organ systems, other labs);
- :mod:`core.review.issues`: the rules and :func:`issue_list`;
- :mod:`core.review.summary`: :func:`site_summary`, :func:`organ_days`,
  :func:`recruitment_by_week`;
- :mod:`core.review.workflow`: :data:`PERMISSIONS`, review status and marks, queries.
"""

from core.review.forms import FORM_OF, FORMS, Form, form_of
from core.review.issues import (
    ISSUE_COLUMNS,
    LATE_ENTRY_GRACE_HOURS,
    RULES,
    IssueReport,
    Rule,
    Severity,
    issue_list,
    review_patients,
    rules_table,
)
from core.review.summary import organ_days, recruitment_by_week, site_summary
from core.review.workflow import (
    PERMISSIONS,
    QUERY_STEPS,
    Action,
    Actor,
    QueryStatus,
    QueryStep,
    ReviewInputError,
    ReviewPermissionError,
    ReviewStatus,
    answer_query,
    close_query,
    load_queries,
    mark_reviewed,
    may,
    raise_query,
    review_status,
    transition_query,
)

__all__ = [
    "FORMS",
    "FORM_OF",
    "ISSUE_COLUMNS",
    "LATE_ENTRY_GRACE_HOURS",
    "PERMISSIONS",
    "QUERY_STEPS",
    "RULES",
    "Action",
    "Actor",
    "Form",
    "IssueReport",
    "QueryStatus",
    "QueryStep",
    "ReviewInputError",
    "ReviewPermissionError",
    "ReviewStatus",
    "Rule",
    "Severity",
    "answer_query",
    "close_query",
    "form_of",
    "issue_list",
    "load_queries",
    "mark_reviewed",
    "may",
    "organ_days",
    "raise_query",
    "recruitment_by_week",
    "review_patients",
    "review_status",
    "rules_table",
    "site_summary",
    "transition_query",
]
