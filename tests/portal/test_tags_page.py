"""Tags in the browser: create, tag the table selection, tag from the object page, rename, share,
delete — each change checked through the API afterwards. A tag is shown as owner/slug."""
from __future__ import annotations

from portal_kit import login


def members(portal, slug: str, user: str) -> list[str]:
    r = portal.api("GET", "/objects", user=user, params={"tags": slug, "limit": 1000})
    r.raise_for_status()
    return [row[0] for row in r.json()["rows"]]


def tag_row(portal, slug: str, user: str | None) -> dict | None:
    data = portal.api("GET", "/tags", user=user).json()
    for row in data["rows"]:
        item = dict(zip(data["columns"], row))
        if item["slug"] == slug:
            return item
    return None


def test_tags_from_creation_to_deletion(context, portal, artefacts):
    page = context.new_page()
    login(page, portal, "alice", "/tags")
    page.fill("#new-tag input[name=slug]", "my-lrds")
    page.fill("#new-tag input[name=name]", "My little red dots")
    page.fill("#new-tag input[name=description]", "compact and red")
    page.click("#new-tag button[type=submit]")
    page.wait_for_selector("#own-tags tr[data-slug='my-lrds']")
    assert page.text_content("#own-tags tr[data-slug='my-lrds'] td.id") == "alice/my-lrds"
    assert tag_row(portal, "my-lrds", "alice")["kind"] == "private"

    # tag two rows of the table selection, with the keyboard and the mouse
    page.goto(f"{portal.url}/?fields=uds&sort=object_id")
    ids = page.eval_on_selector_all("#catalog-table tbody tr[data-object-id]", "rows => rows.map(r => r.dataset.objectId)")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.click(f"input.row-select[value='{ids[2]}']")
    assert page.text_content("#selected-count") == "2"
    page.select_option("#tag-target", "my-lrds")
    page.click("#tag-add")
    page.wait_for_selector(f"tr[data-object-id='{ids[0]}'] .tag >> text=my-lrds")
    assert sorted(members(portal, "my-lrds", "alice")) == sorted([ids[0], ids[2]])
    page.goto(f"{portal.url}/?tags=my-lrds")
    assert page.wait_for_selector("#total[data-total]").get_attribute("data-total") == "2"
    page.click(f"input.row-select[value='{ids[0]}']")
    page.select_option("#tag-target", "my-lrds")
    page.click("#tag-remove")
    page.wait_for_selector("#total[data-total='1']")
    assert members(portal, "my-lrds", "alice") == [ids[2]]

    # from the object page: 't' adds the object to the chosen tag, × removes it
    page.goto(f"{portal.url}/objects/{ids[5]}")
    page.select_option("#object-tag-target", "my-lrds")
    page.keyboard.press("t")
    page.wait_for_selector("#object-tags li[data-owner='alice'][data-slug='my-lrds']")
    assert ids[5] in members(portal, "my-lrds", "alice")
    page.screenshot(path=str(artefacts / "object-tagged.png"), full_page=False)
    page.click("#object-tags li[data-slug='my-lrds'] .chip-remove")
    page.wait_for_selector("#object-tags li[data-slug='my-lrds']", state="detached")
    assert ids[5] not in members(portal, "my-lrds", "alice")

    # rename, describe, share: bob sees it as alice/my-lrds; unshared again, he does not
    page.goto(f"{portal.url}/tags")
    row = "#own-tags tr[data-slug='my-lrds']"
    page.fill(f"{row} input.tag-name", "Alice's LRDs")
    page.fill(f"{row} input.tag-description", "shared with the team")
    page.check(f"{row} input.tag-shared")
    page.click(f"{row} .tag-save")
    page.wait_for_selector(f"{row}[data-saves='1']")
    shared = tag_row(portal, "my-lrds", "bob")
    assert shared["kind"] == "shared" and shared["name"] == "Alice's LRDs" and shared["owner"] == "alice"
    bob = context.browser.new_context()
    try:
        bob_page = bob.new_page()
        login(bob_page, portal, "bob", "/tags")
        assert bob_page.text_content("#other-tags tr[data-slug='my-lrds'] td.id") == "alice/my-lrds"
        assert bob_page.query_selector("#own-tags tr[data-slug='my-lrds']") is None  # not his to edit
    finally:
        bob.close()
    page.uncheck(f"{row} input.tag-shared")
    page.click(f"{row} .tag-save")
    page.wait_for_selector(f"{row}[data-saves='2']")
    assert tag_row(portal, "my-lrds", "bob") is None
    page.screenshot(path=str(artefacts / "tags.png"), full_page=True)

    page.click(f"{row} .tag-delete")  # confirms in a dialog (accepted)
    page.wait_for_selector(row, state="detached")
    assert tag_row(portal, "my-lrds", "alice") is None


def test_system_tags_are_shown_to_everyone(page, portal):
    page.goto(f"{portal.url}/tags")
    system = page.eval_on_selector_all("#other-tags tr[data-slug]", "rows => rows.map(r => r.dataset.slug)")
    assert {"lrd", "blagn", "lae", "hae", "qg"} <= set(system)
    assert page.query_selector("#new-tag") is None and "Log in" in page.text_content("main")
