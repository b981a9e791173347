"""The composition of the domains: the cross-domain hooks, registered once at application start.

The legal-basis domain calls ``Hooks.on_lapse`` when a basis lapses; the search domain provides
what deletes the results of the searches made under it. Neither imports the other: the app
factory and the command line build their ``Hooks`` here.
"""

from __future__ import annotations

from governance.core.work import Hooks
from governance.search.records import delete_lapsed_results

__all__ = ["hooks"]


def hooks() -> Hooks:
    """The hooks every front end registers: a lapsed basis loses its searches' results."""
    return Hooks(on_lapse=[delete_lapsed_results])
