"""Cohort panels: one module per panel (memoized compute + pure render + its drill-downs and
CSV names), listed once here. The cohort page (tabs), the HTML report, the CSV export and the
warm-up iterate :data:`PANELS`; a new panel is one module and one line (docs/architecture.md).
"""

from __future__ import annotations

from types import MappingProxyType

from components.cohort import (
    baseline,
    completeness,
    flow,
    immune,
    primary,
    safety,
    survival,
    trajectories,
)
from components.cohort.panel import Panel, PanelView, Section

#: tab order
PANELS: tuple[Panel, ...] = (
    flow.PANEL,
    baseline.PANEL,
    primary.PANEL,
    trajectories.PANEL,
    survival.PANEL,
    immune.PANEL,
    safety.PANEL,
    completeness.PANEL,
)
BY_KEY = MappingProxyType({p.key: p for p in PANELS})
DEFAULT_PANEL = primary.PANEL

__all__ = ["BY_KEY", "DEFAULT_PANEL", "PANELS", "Panel", "PanelView", "Section"]
