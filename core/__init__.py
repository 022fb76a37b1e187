"""ImmunoSep clinical engine.

Pure Python (numpy, pandas, scipy, statsmodels, lifelines, SQLAlchemy). This package never
imports dash, plotly, flask or ``components`` and never reads the environment: configuration
arrives as arguments (frozen rule objects from :mod:`core.rules`). See docs/architecture.md.
"""

__version__ = "0.1.0"
