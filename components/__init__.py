"""Dash user interface: shell, pages, pure figure/table builders and the cached service layer.

May import dash, plotly, dash-bootstrap-components and ``core``; ``core`` never imports this.
"""
