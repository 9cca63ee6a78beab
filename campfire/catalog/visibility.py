"""What one caller may see: the programs whose spectra are visible, and which tags.

The server builds one :class:`Visibility` per caller (anonymous: public programs and
system tags; a user: also their proprietary programs, shared tags and their own
private tags); the client's own catalog sees everything. The compiler, the export
and the tag editor turn it into SQL predicates here, so they agree on what is
visible.

Examples
--------
>>> Visibility(program_ids=frozenset({1180, 6032}), key='6032').program_predicate('s')
('s.program_id IN (?,?)', [1180, 6032])
>>> Visibility.everything().program_predicate('s')
('1', [])
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Visibility"]


@dataclass(frozen=True)
class Visibility:
    """What one caller may see.

    Parameters
    ----------
    program_ids : frozenset of int, optional
        The visible programs; None means every program (the pipeline, or a client's
        own synced copy, which holds only what its user could see).
    key : str
        The ``object_aggregates`` visibility key (:func:`campfire.catalog.aggregates.visibility_key`).
    user : str, optional
        The caller; None with ``all_tags=False`` means anonymous: system tags only.
    all_tags : bool
        Every tag is visible (the client's own catalog).
    """

    program_ids: frozenset[int] | None = None
    key: str = "*"
    user: str | None = None
    all_tags: bool = True

    @classmethod
    def everything(cls) -> "Visibility":
        """The visibility of the pipeline and of a client's own catalog."""
        return cls()

    def program_predicate(self, alias: str = "s") -> tuple[str, list]:
        """SQL (and parameters) keeping the rows of ``alias`` (spectra, programs, ...) of visible programs."""
        if self.program_ids is None:
            return "1", []
        ids = sorted(self.program_ids)
        if not ids:
            return "0", []
        return f"{alias}.program_id IN ({','.join('?' * len(ids))})", ids

    def inspection_predicate(self, alias: str = "i", spectra: str = "spectra") -> tuple[str, list]:
        """SQL (and parameters) keeping the visible rows of ``inspections`` (as ``alias``).

        An inspection is visible when every spectrum it rests on (its ``spectra_seen``)
        is in the catalog (``spectra``: the table, e.g. ``src.spectra``) and of a
        visible program — so a grade resting on a proprietary spectrum shows to that
        program's members only.
        """
        if self.program_ids is None:
            return "1", []
        pred, params = self.program_predicate("sp")
        return (f"NOT EXISTS (SELECT 1 FROM json_each({alias}.spectra_seen) j LEFT JOIN {spectra} sp "
                f"ON sp.spectrum_id = json_extract(j.value, '$.spectrum_id') "
                f"WHERE sp.program_id IS NULL OR NOT ({pred}))", params)

    def tag_predicate(self, alias: str = "t") -> tuple[str, list]:
        """SQL (and parameters) keeping the visible rows of ``tags`` (as ``alias``)."""
        if self.all_tags:
            return "1", []
        if self.user is None:
            return f"{alias}.kind = 'system'", []
        return f"({alias}.kind IN ('system', 'shared') OR ({alias}.kind = 'private' AND {alias}.owner = ?))", [self.user]
