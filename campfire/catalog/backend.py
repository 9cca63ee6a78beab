"""The catalog backend contract: what :class:`campfire.Campfire` asks of a catalog.

Two classes implement it — :class:`~campfire.catalog.local.LocalCatalog` (SQLite, a
local archive root or synced data_dir) and :class:`~campfire.catalog.remote.RemoteCatalog`
(the HTTP API) — and give the same rows, columns and dtypes for the same
:class:`~campfire.catalog.filters.Query`. The client talks to this interface only;
``tests/foundation/test_catalog_backend.py`` checks that both classes have every
member with a compatible signature.

Examples
--------
>>> from campfire.catalog.local import LocalCatalog
>>> issubclass(LocalCatalog, CatalogBackend)
True
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, runtime_checkable, TYPE_CHECKING


from campfire.catalog.filters import Query

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["CatalogBackend"]


@runtime_checkable
class CatalogBackend(Protocol):
    """A catalog the client can query: rows of objects and spectra, single records, metadata.

    Missing values in rows and Tables follow :mod:`campfire.catalog.columns` (NaN, 0,
    '' or False); what a caller may not see does not exist for them (None, or absent).
    """

    def query(self, q: Query) -> Table:
        """Rows of ``q`` as an astropy Table with the query_objects / query_spectra columns."""
        ...

    def count(self, q: Query) -> int:
        """Number of rows matching ``q`` (limit and offset ignored)."""
        ...

    def iter_rows(self, q: Query) -> Iterator[dict[str, Any]]:
        """The rows of ``q`` as dicts, streamed with bounded memory."""
        ...

    def object_row(self, object_id: str) -> dict[str, Any] | None:
        """One object's row, or None."""
        ...

    def object_spectra(self, object_id: str) -> list[dict[str, Any]]:
        """The spectra rows of one object (empty when there is none)."""
        ...

    def object_photometry(self, object_id: str) -> dict[str, Any] | None:
        """``{'catalog', 'photo_z', 'photo_z_err_lo', 'photo_z_err_hi', 'bands'}`` or None."""
        ...

    def spectrum_row(self, spectrum_id: str) -> dict[str, Any] | None:
        """One spectrum's row, or None."""
        ...

    def programs(self) -> Table:
        """program_id, slug, program_name, pi_name, is_public of the visible programs."""
        ...

    def fields(self) -> list[str]:
        """The visible fields."""
        ...

    def gratings(self) -> list[str]:
        """The gratings of the visible spectra."""
        ...

    def observations(self) -> list[str]:
        """The visible observations."""
        ...

    def metadata(self) -> dict[str, list]:
        """``{'programs', 'fields', 'gratings', 'observations'}``."""
        ...

    def counts(self) -> dict[str, int]:
        """``{'observations', 'objects', 'spectra'}`` visible to the caller."""
        ...

    def tags(self) -> Table:
        """slug, name, member_count, kind, owner, description of the visible tags."""
        ...

    def inspections(self, object_id: str) -> Table:
        """The visible inspection records of one object (the consensus in ``meta``)."""
        ...

    def inspect(self, object_id: str, *, quality: int | str, redshift: float | None = None, comment: str = "",
                issues: list[str] | None = None, resolves_conflict: bool = False,
                reviewer: str | None = None) -> dict[str, Any]:
        """Store one inspection; the stored record with the object's new ``consensus``."""
        ...
