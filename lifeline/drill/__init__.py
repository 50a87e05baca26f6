"""Fault drills: run a scenario against the embedded simulator under load and measure it.

Modules: ``result`` (what a run measured, and its JSON form), ``report`` (text tables),
``progress`` (the live status line), ``plot`` (a PNG timeline; the ``plot`` extra),
``scenario``, ``load``, ``faults`` and ``runner`` (the engine).
"""

__all__: list[str] = []
