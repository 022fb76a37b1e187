"""What a cohort panel is: a memoized ``compute`` (numbers only) and a pure ``render`` (figures
and display tables), with the drill-downs of the elements it draws.

A panel module defines ``PANEL = Panel(...)`` and is listed once in
:data:`components.cohort.PANELS`; the cohort page, the HTML report, the CSV export and the
warm-up iterate that tuple, so a new panel is one module and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from components.blinding import GUARDS
from components.data.cohort import CohortFilters
from components.data.keys import Context

#: a drill-down request: (kind, selection) for :func:`components.data.cohort.drilldown`;
#: ``group_index`` in the selection is resolved to the role's group label by the page
Drill = tuple[str, dict[str, Any]]
#: click payload (plotly ``clickData`` or dash-ag-grid ``cellClicked``) → drill-down or None
DrillFn = Callable[[Mapping[str, Any]], Drill | None]


@dataclass(frozen=True)
class Section:
    """One card of a panel: a figure and/or a table under one title.

    ``figure_name`` / ``table_name`` name the components (``{"type": "cohort-graph", "name":
    figure_name}``, ``{"type": "cohort-grid", "name": table_name}``); the table name is also
    its CSV name (``cohort-<table_name>.csv``). ``headers`` maps neutral table fields (``g0``,
    ``g1``) to the header text of this role's groups.

    ``guard`` names the :data:`components.blinding.GUARDS` entry the section falls under when it
    is shown to a blinded role (then it was computed under the exit policy: whole visible
    cohort, cells of at least ``MIN_CELL_SIZE`` patients; docs/blinding.md 6.5); the page and
    the report mark such a section, and ``note`` says how it was computed.
    """

    title: str
    figure_name: str | None = None
    figure: go.Figure | None = None
    table_name: str | None = None
    table: pd.DataFrame | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    guard: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.guard is not None and self.guard not in GUARDS:
            raise ValueError(
                f"section {self.title!r}: guard {self.guard!r} is not one of {sorted(GUARDS)}"
            )

    def csv_frame(self) -> pd.DataFrame | None:
        """The table as exported: helper ``*_key`` columns dropped, group headers applied."""
        if self.table is None:
            return None
        t = self.table.drop(columns=[c for c in self.table.columns if c.endswith("_key")])
        return t.rename(columns=dict(self.headers))


@dataclass(frozen=True)
class PanelView:
    """A rendered panel: sections in display order, explanatory notes, "hidden: could
    reveal allocation" chips for what this role may not see, and "suppressed: fewer than
    MIN_CELL_SIZE patients" chips for guarded cells too small to show (docs/blinding.md 6.5)."""

    sections: tuple[Section, ...] = ()
    notes: tuple[str, ...] = ()
    chips: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()

    def tables(self) -> dict[str, pd.DataFrame]:
        """CSV-ready frames by table name."""
        return {
            s.table_name: s.csv_frame()
            for s in self.sections
            if s.table_name is not None and s.table is not None
        }

    def figures(self) -> dict[str, go.Figure]:
        return {
            s.figure_name: s.figure
            for s in self.sections
            if s.figure_name is not None and s.figure is not None
        }


@dataclass(frozen=True)
class Panel:
    """A cohort tab: URL key, tab label, compute, render and its drill-downs."""

    key: str
    label: str
    compute: Callable[[Context, CohortFilters], Any]
    render: Callable[[Any, Context], PanelView]
    drills: Mapping[str, DrillFn] = field(default_factory=lambda: MappingProxyType({}))

    def view(self, ctx: Context, filters: CohortFilters) -> PanelView:
        return self.render(self.compute(ctx, filters), ctx)

    def drill(self, name: str, click: Mapping[str, Any] | None) -> Drill | None:
        """The drill-down behind a click on this panel's element ``name`` (None: not a drill)."""
        fn = self.drills.get(name)
        if fn is None or not click:
            return None
        return fn(click)


def group_headers(labels: tuple[str, ...], suffix: str = "") -> dict[str, str]:
    """Neutral fields ``g0``, ``g1`` → the role's group labels (+ suffix)."""
    return {f"g{i}": f"{lab}{suffix}" for i, lab in enumerate(labels)}


def first_point(click: Mapping[str, Any]) -> dict[str, Any] | None:
    points = click.get("points") or []
    return points[0] if points else None
