"""Grading in the browser: keyboard grades stored as records, the consensus as several reviewers
(and an admin) grade, the queue's n/p, rights checked by the server, and no grade leaking to
people who may not see the spectra it rests on."""
from __future__ import annotations

import re

import pytest
from portal_kit import add_account, login, visibility_ids

from campfire.catalog.consensus import consensus

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture(scope="module")
def accounts(portal):
    """carol reviews the public programs of the mixed object; dana is an archive admin."""
    truth = visibility_ids(portal.root)
    mixed = truth["mixed"][0]
    programs = portal.api("GET", f"/objects/{mixed}").json()["object"]["programs"].split(",")
    add_account(portal, "carol", programs=programs)
    add_account(portal, "dana", role="admin")
    return {"mixed": mixed, "prop_only": truth["prop_only"][0]}


def open_object(page, portal, object_id, query=""):
    page.goto(f"{portal.url}/objects/{object_id}{query}")
    page.wait_for_selector("body[data-plots-ready='1']")


def grade(page, keys: list[str], saves: int = 1) -> None:
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_selector(f"#save-status[data-saved='{saves}']")


def records(portal, object_id, user=None) -> list[dict]:
    r = portal.api("GET", f"/objects/{object_id}/inspections", user=user)
    r.raise_for_status()
    return r.json()["inspections"]


def test_grades_from_the_keyboard_build_the_consensus(context, portal, accounts, artefacts):
    mixed = accounts["mixed"]
    page = context.new_page()
    login(page, portal, "alice")
    open_object(page, portal, mixed)
    z_auto = page.evaluate("() => JSON.parse(document.getElementById('page-data').textContent).redshift_auto")
    before = page.text_content("#consensus")
    page.keyboard.press("c")
    page.keyboard.type(PAYLOAD)
    page.keyboard.press("Escape")
    grade(page, ["a", "4", "b", "Enter"])
    mine = [r for r in records(portal, mixed, "alice") if r["reviewer"] == "alice"]
    assert len(mine) == 1
    assert mine[0]["quality"] == 4 and mine[0]["redshift"] == pytest.approx(z_auto, abs=1e-5)
    assert mine[0]["issues"] == ["BAD_SPECTRUM"] and mine[0]["comment"] == PAYLOAD
    assert len(mine[0]["spectra_seen"]) == len(portal.api("GET", f"/objects/{mixed}", user="alice").json()["spectra"])
    page.wait_for_selector(f"#history tr[data-inspection-id='{mine[0]['inspection_id']}']")
    shown = page.text_content(f"#history tr[data-inspection-id='{mine[0]['inspection_id']}'] td.comment")
    assert shown == PAYLOAD and page.evaluate("() => window.__pwned") is None  # a comment is text
    expected = consensus(records(portal, mixed, "alice"))
    assert page.get_attribute("#consensus .state", "data-state") == expected["state"]
    assert page.text_content("#consensus") != before
    page.screenshot(path=str(artefacts / "object-graded.png"), full_page=False)

    # carol (public program) disagrees with a confident grade: the state becomes a conflict
    carol = context.browser.new_context()
    try:
        p2 = carol.new_page()
        login(p2, portal, "carol")
        open_object(p2, portal, mixed)
        p2.keyboard.press("z")
        p2.keyboard.type(f"{z_auto + 1.5:.4f}")
        p2.keyboard.press("Escape")
        grade(p2, ["4", "Enter"])
        # carol's own view: alice's grade rests on a proprietary spectrum, so it is not among hers
        carols = records(portal, mixed, "carol")
        assert all(r["reviewer"] != "alice" for r in carols)
        assert p2.get_attribute("#consensus .state", "data-state") == consensus(carols)["state"] != "conflict"
    finally:
        carol.close()
    page.reload()
    page.wait_for_selector("body[data-plots-ready='1']")
    page.wait_for_selector("#consensus .state[data-state='conflict']")  # alice sees both grades: they disagree
    assert page.text_content("#z-inspected") == "—"

    # the admin resolves it; the object's fields follow
    admin = context.browser.new_context()
    try:
        p3 = admin.new_page()
        login(p3, portal, "dana", "/queue")
        assert mixed in p3.eval_on_selector_all("#queue-conflicts a.id", "links => links.map(a => a.textContent)")
        open_object(p3, portal, mixed, "?queue=conflicts")
        assert p3.is_visible("#resolve-box")
        p3.check("#resolve-box input")
        grade(p3, ["a", "3", "Enter"])
        assert p3.get_attribute("#consensus .state", "data-state") == "resolved"
        assert float(p3.text_content("#z-inspected")) == pytest.approx(z_auto, abs=1e-4)
    finally:
        admin.close()
    row = portal.api("GET", f"/objects/{mixed}", user="alice").json()["object"]
    assert row["redshift_quality"] == 3 and row["redshift_inspected"] == pytest.approx(z_auto, abs=1e-5)


def test_anonymous_and_non_members_see_no_grade_resting_on_hidden_spectra(context, portal, accounts):
    mixed = accounts["mixed"]
    alice_page = context.new_page()
    login(alice_page, portal, "alice")
    open_object(alice_page, portal, accounts["prop_only"])
    grade(alice_page, ["a", "4", "Enter"])
    member_view = records(portal, accounts["prop_only"], "alice")
    assert any(r["reviewer"] == "alice" for r in member_view)

    anonymous = context.browser.new_context()
    try:
        page = anonymous.new_page()
        assert page.goto(f"{portal.url}/objects/{accounts['prop_only']}").status == 404
        open_object(page, portal, mixed)
        page.wait_for_selector("#history tbody tr")
        reviewers = page.eval_on_selector_all("#history tbody tr[data-inspection-id] td:nth-child(2)",
                                              "cells => cells.map(c => c.textContent)")
        assert "alice" not in " ".join(reviewers)  # her grade rests on proprietary spectra too
        visible = records(portal, mixed)
        assert all(r["reviewer"] != "alice" for r in visible)
        row = portal.api("GET", f"/objects/{mixed}").json()["object"]
        expected = consensus(visible)
        assert row["redshift_quality"] == expected["quality"]
        shown = page.text_content("#object-quality")
        assert shown.startswith(str(row["redshift_quality"]))
        assert page.query_selector("#grade-part") is None  # anonymous: nothing to grade with
    finally:
        anonymous.close()


def test_the_server_decides_who_may_grade(context, portal, accounts):
    page = context.new_page()
    login(page, portal, "bob")  # a member of no program
    open_object(page, portal, accounts["mixed"])
    page.wait_for_selector("#inspect-denied", state="visible")
    assert page.is_hidden("#grade-part") and page.is_visible("#z-input")  # looking at redshifts is for everyone
    token = page.get_attribute("meta[name=csrf-token]", "content")
    r = page.request.post(f"{portal.url}/api/v1/objects/{accounts['mixed']}/inspections",
                          data={"quality": 4, "redshift": 1.0}, headers={"X-CSRF-Token": token})
    assert r.status == 403
    r = page.request.post(f"{portal.url}/api/v1/objects/{accounts['mixed']}/inspections", data={"quality": 4})
    assert r.status == 403 and r.json()["error"] == "csrf_failed"


def test_queue_walks_the_ungraded_objects_with_n_and_p(context, portal, accounts):
    page = context.new_page()
    login(page, portal, "carol")
    page.goto(f"{portal.url}/?sort=object_id&fields=uds")
    page.click("#inspect-selection")
    page.wait_for_selector("#queue-ungraded")
    queue = page.eval_on_selector_all("#queue-ungraded a.id", "links => links.map(a => a.textContent)")
    assert len(queue) >= 3
    api = portal.api("GET", "/inspections/queue", user="carol",
                     params={"fields": "uds", "sort": "object_id", "mode": "ungraded", "limit": 50}).json()
    assert queue == api["object_ids"]
    page.click("#queue-ungraded a.start")
    page.wait_for_selector("body[data-plots-ready='1']")
    assert f"/objects/{queue[0]}?" in page.url
    grade(page, ["2", "Enter"])  # grade the first, then move on
    page.keyboard.press("n")
    page.wait_for_url(re.compile(f"/objects/{re.escape(queue[1])}\\?"))
    page.wait_for_selector("body[data-plots-ready='1']")
    page.keyboard.press("n")  # skip the second without grading
    page.wait_for_url(re.compile(f"/objects/{re.escape(queue[2])}\\?"))
    page.wait_for_selector("body[data-plots-ready='1']")
    page.keyboard.press("p")
    page.wait_for_url(re.compile(f"/objects/{re.escape(queue[1])}\\?"))
    assert "fields=uds" in page.url
    # the server's queue no longer lists the graded one
    after = portal.api("GET", "/inspections/queue", user="carol",
                       params={"fields": "uds", "sort": "object_id", "mode": "ungraded", "limit": 50}).json()
    assert queue[0] not in after["object_ids"] and queue[1] in after["object_ids"]


def test_refit_near_a_chosen_redshift(context, portal, accounts):
    page = context.new_page()
    login(page, portal, "carol")
    open_object(page, portal, accounts["mixed"])
    z_auto = page.evaluate("() => JSON.parse(document.getElementById('page-data').textContent).redshift_auto")
    page.keyboard.press("z")
    page.keyboard.type(f"{z_auto + 0.03:.4f}")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.wait_for_selector("#chi2-plot[data-refits='1']")
    refit = page.evaluate("""() => document.getElementById('chi2-plot').data.filter(t => t.meta && t.meta.role === 'refit')
                             .map(t => ({x: Array.from(t.x)}))""")
    assert len(refit) == 1
    window = refit[0]["x"]
    assert min(window) >= z_auto + 0.03 - 0.05 - 1e-9 and max(window) <= z_auto + 0.03 + 0.05 + 1e-9
    z = float(page.input_value("#z-input"))
    assert min(window) <= z <= max(window)
