"""Cached data layer: frames in, frames out, every memoized function keyed by one frozen
:class:`components.data.keys.Context`. Never builds components."""
