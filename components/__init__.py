"""Dash user interface, in layers (docs/architecture.md "The layer rule"): pages and the API,
cohort panels, the cached data layer, the blinding policy, the Flask plumbing (server/); pure
figure / table / format builders beside them.

May import dash, plotly, dash-bootstrap-components and ``core``; ``core`` never imports this.
"""
