"""The catalog backend contract: LocalCatalog and RemoteCatalog both implement CatalogBackend."""
from __future__ import annotations

import inspect

import pytest

from campfire import Campfire
from campfire.catalog.backend import CatalogBackend
from campfire.catalog.local import LocalCatalog
from campfire.catalog.remote import RemoteCatalog

MEMBERS = sorted(n for n, v in vars(CatalogBackend).items() if callable(v) and not n.startswith("_"))


def test_the_contract_covers_what_the_client_asks():
    assert {"query", "count", "iter_rows", "object_row", "object_spectra", "object_photometry", "spectrum_row",
            "programs", "fields", "gratings", "observations", "metadata", "counts", "tags"} <= set(MEMBERS)


@pytest.mark.parametrize("impl", [LocalCatalog, RemoteCatalog])
def test_both_backends_implement_the_contract(impl):
    assert issubclass(impl, CatalogBackend)


@pytest.mark.parametrize("impl", [LocalCatalog, RemoteCatalog])
@pytest.mark.parametrize("member", MEMBERS)
def test_signatures_are_compatible(impl, member):
    want = inspect.signature(getattr(CatalogBackend, member))
    got = inspect.signature(getattr(impl, member))
    want_params = list(want.parameters.values())
    got_params = list(got.parameters.values())
    # every parameter of the contract, with the same name and kind, in the same place
    assert [(p.name, p.kind) for p in got_params[:len(want_params)]] == [(p.name, p.kind) for p in want_params]
    # anything more is optional
    extra = got_params[len(want_params):]
    assert all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
               for p in extra), extra
    assert got.return_annotation == want.return_annotation


def test_a_local_client_talks_to_a_backend(demo_root):
    cf = Campfire(data_dir=demo_root)
    assert isinstance(cf.catalog(), CatalogBackend)
    assert isinstance(RemoteCatalog("http://127.0.0.1:9", data_dir=demo_root), CatalogBackend)
