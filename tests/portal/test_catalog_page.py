"""The catalog page in a real browser: filtering, sorting, paging, the Python snippet, downloads,
and what anonymous visitors may see.

The page is checked against the API it must agree with: the same selection through
``/api/v1/objects`` gives the same rows in the same order and the same total.
"""
from __future__ import annotations

import csv
import io
import urllib.parse

import pytest
from astropy.table import Table
from portal_kit import login, visibility_ids


def page_ids(page) -> list[str]:
    return page.eval_on_selector_all("#catalog-table tbody tr[data-object-id]", "rows => rows.map(r => r.dataset.objectId)")


def shown_total(page) -> int:
    """The total the page shows (filled in by its script when the server had not counted it yet)."""
    return int(page.wait_for_selector("#total[data-total]").get_attribute("data-total"))


def api_rows(portal, user=None, **params) -> dict:
    r = portal.api("GET", "/objects", user=user, params=params)
    r.raise_for_status()
    return r.json()


def test_filter_sort_and_page_agree_with_the_api(page, portal, artefacts):
    page.goto(portal.url + "/")
    everything = api_rows(portal, limit=100)
    assert shown_total(page) == everything["total"]
    assert page_ids(page) == [row[0] for row in everything["rows"]]
    last = -(-everything["total"] // 100)  # the page's script adds the last page once it knows the total
    assert page.get_attribute("#page-last", "href").endswith(f"page={last}")
    assert f"of {last}" in page.text_content("#pager-position")
    page.reload()  # the server keeps the total: now it comes with the page
    assert page.get_attribute("#total", "data-total") == str(everything["total"]) and page.query_selector("#page-last")

    # the form: a field, a redshift range and two qualities
    page.check("input[name=fields][value=uds]")
    page.fill("input[name=z_min]", "2")
    page.fill("input[name=z_max]", "5")
    page.check("input[name=redshift_quality][value='3']")
    page.check("input[name=redshift_quality][value='4']")
    page.click("#filters .filter-actions button[type=submit] >> nth=0")
    page.wait_for_url("**/?*")
    expected = api_rows(portal, fields="uds", redshift_range="2,5", redshift_quality="3,4", limit=100)
    assert 0 < expected["total"] < everything["total"]
    assert shown_total(page) == expected["total"]
    assert page_ids(page) == [row[0] for row in expected["rows"]]
    assert page.is_checked("input[name=fields][value=uds]") and page.input_value("input[name=z_min]") == "2"

    # sorting by clicking the column heading: ascending, then descending
    page.click("th[data-column=redshift] a.sort")
    page.wait_for_url("**sort=redshift**")
    ascending = api_rows(portal, fields="uds", redshift_range="2,5", redshift_quality="3,4", sort="redshift", limit=100)
    assert page_ids(page) == [row[0] for row in ascending["rows"]]
    page.click("th[data-column=redshift] a.sort")
    page.wait_for_url("**sort_dir=desc**")
    descending = api_rows(portal, fields="uds", redshift_range="2,5", redshift_quality="3,4", sort="redshift",
                          sort_dir="desc", limit=100)
    assert page_ids(page) == [row[0] for row in descending["rows"]]
    z_shown = [float(t) for t in page.eval_on_selector_all(
        "#catalog-table tbody td.strong", "cells => cells.map(c => c.textContent)")]
    assert z_shown == sorted(z_shown, reverse=True)

    # paging: 25 rows a page, then the next page
    page.goto(portal.url + "/?per_page=25&sort=max_snr&sort_dir=desc")
    first = api_rows(portal, sort="max_snr", sort_dir="desc", limit=25)
    assert page_ids(page) == [row[0] for row in first["rows"]]
    page.click("#page-next")
    page.wait_for_url(lambda url: "2" in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("page", []))
    second = api_rows(portal, sort="max_snr", sort_dir="desc", limit=25, offset=25)
    assert page_ids(page) == [row[0] for row in second["rows"]]
    page.keyboard.press("[")  # the keyboard goes back a page
    page.wait_for_url(lambda url: "page" not in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))
    assert page_ids(page) == [row[0] for row in first["rows"]]

    page.goto(portal.url + "/?sort=redshift&sort_dir=desc")
    page.screenshot(path=str(artefacts / "catalog.png"), full_page=False)


def test_a_bad_filter_is_a_clear_error(page, portal):
    response = page.goto(portal.url + "/?z_min=5&z_max=2&colour=red")
    assert response.status == 400
    text = page.text_content("#query-error")
    assert "unknown parameter colour" in text
    response = page.goto(portal.url + "/?z_min=5&z_max=2")
    assert response.status == 400
    assert "redshift_range: min (5) is greater than max (2)" in page.text_content("#query-error")


def test_python_snippet_runs_and_returns_the_selection(page, portal):
    page.goto(portal.url + "/?fields=uds&z_min=3&sort=redshift&sort_dir=desc&dq_exclude=LOW_SNR")
    page.click("details.snippet summary")
    code = page.text_content("#python-snippet")
    assert "cf.query_objects(" in code and "dq_flags='~LOW_SNR'" in code and "redshift_range=(3.0, float('inf'))" in code
    namespace: dict = {}
    exec(compile(code, "<portal snippet>", "exec"), namespace)  # the user's copy-paste, run as is
    ids = list(namespace["objects"]["object_id"])
    expected = api_rows(portal, fields="uds", redshift_range="3,inf", dq_flags="~LOW_SNR", sort="redshift",
                        sort_dir="desc", limit=1000)
    assert ids == [row[0] for row in expected["rows"]]
    assert ids[:len(page_ids(page))] == page_ids(page)


def test_downloads_are_the_selection_as_ecsv_and_csv(context, portal):
    import requests

    query = "fields=gds&sort=ra"
    expected = api_rows(portal, fields="gds", sort="ra", limit=1000)
    r = requests.get(f"{portal.url}/objects.ecsv?{query}", timeout=60)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    table = Table.read(r.text, format="ascii.ecsv")
    assert list(table["object_id"]) == [row[0] for row in expected["rows"]]
    assert table.colnames == expected["columns"]
    assert str(table["ra"].unit) == "deg" and table["has_photometry"].dtype == bool
    assert table["n_spectra"].dtype.kind == "i"
    row0 = dict(zip(expected["columns"], expected["rows"][0]))
    assert table["redshift"][0] == pytest.approx(row0["redshift"]) and table["programs"][0] == row0["programs"]
    rows = list(csv.DictReader(io.StringIO(requests.get(f"{portal.url}/objects.csv?{query}", timeout=60).text)))
    assert [r["object_id"] for r in rows] == [row[0] for row in expected["rows"]]

    # a logged-in member downloads through the browser (session cookie): proprietary objects included
    page = context.new_page()
    login(page, portal, "alice")
    prop_only = visibility_ids(portal.root)["prop_only"][0]
    page.goto(f"{portal.url}/?search={urllib.parse.quote(prop_only)}")
    with page.expect_download() as info:
        page.click("#download-ecsv")
    downloaded = Table.read(pathlib_text(info.value.path()), format="ascii.ecsv")
    assert list(downloaded["object_id"]) == [prop_only]
    anonymous = Table.read(requests.get(f"{portal.url}/objects.ecsv?search={prop_only}", timeout=60).text,
                           format="ascii.ecsv")
    assert len(anonymous) == 0


def pathlib_text(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_anonymous_visitors_see_no_proprietary_object_or_spectrum(page, portal):
    truth = visibility_ids(portal.root)
    prop_only, mixed = truth["prop_only"][0], truth["mixed"][0]
    page.goto(f"{portal.url}/?search={prop_only}")
    assert page_ids(page) == [] and shown_total(page) == 0
    # no proprietary program in the form either
    programs = page.eval_on_selector_all("input[name=programs]", "boxes => boxes.map(b => b.value)")
    assert programs and not page.query_selector(".badge.proprietary")

    response = page.goto(f"{portal.url}/objects/{prop_only}")
    assert response.status == 404 and "Not found" in page.text_content("h1")
    assert page.request.get(f"{portal.url}/objects/{prop_only}/view.json").status == 404

    page.goto(f"{portal.url}/objects/{mixed}")
    shown = page.eval_on_selector_all("#spectra-table tr[data-spectrum-id]", "rows => rows.map(r => r.dataset.spectrumId)")
    public = [sid for sid, proprietary in truth["mixed_spectra"][mixed] if not proprietary]
    assert shown == public
    view = page.request.get(f"{portal.url}/objects/{mixed}/view.json").json()
    assert [s["spectrum_id"] for s in view["spectra"]] == public

    # a member sees them all
    login(page, portal, "alice", f"/objects/{mixed}")
    shown = page.eval_on_selector_all("#spectra-table tr[data-spectrum-id]", "rows => rows.map(r => r.dataset.spectrumId)")
    assert shown == [sid for sid, _ in truth["mixed_spectra"][mixed]]
    assert page.query_selector(".badge.proprietary") is None  # (badges are on the catalog page)
    page.goto(f"{portal.url}/?search={prop_only}")
    assert page_ids(page) == [prop_only]
