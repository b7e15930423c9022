"""The web console in headless Chromium against a real server: machines, diagram,
instances, events applied by clicking and by another client, storage, live tail."""

from __future__ import annotations

import json

import pytest
from console_harness import ConsoleServer, Shots
from playwright.sync_api import Page, expect

from pyrstmdb.client.sync import Client
from pyrstmdb.engine.definition import compile_definition

pytestmark = pytest.mark.slow  # browser flows of several seconds each

ORDER = {
    "states": ["created", "paid", "shipped", "delivered", "cancelled"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": "shipped", "event": "DELIVER", "to": "delivered"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
        {"from": "shipped", "event": "PING", "to": "shipped"},
        {"from": "created", "event": "QUOTE", "to": "created"},
    ],
}


def _set_editor(page: Page, text: str) -> None:
    page.fill("#definition-editor", text)


def _create_machine_in_editor(page: Page, server: ConsoleServer, shots: Shots) -> None:
    page.goto(server.url + "/#/machines")
    expect(page.get_by_text("No machines yet")).to_be_visible()
    shots("machines-empty")
    page.get_by_role("button", name="New machine").click()
    page.fill("#machine-name", "order")
    _set_editor(page, '{"states": ["a"], "initial": ')
    expect(page.locator("#editor-status")).to_contain_text("Invalid JSON")
    bad = dict(ORDER, transitions=[{"from": "created", "event": "PAY", "to": "nowhere"}])
    _set_editor(page, json.dumps(bad, indent=2))
    page.click("#create-machine")
    expect(page.locator("#editor-errors")).to_contain_text("nowhere")
    expect(page.locator("#editor-errors .code")).to_have_text("BAD_REQUEST")
    shots("editor-validation-error")
    _set_editor(page, json.dumps(ORDER, indent=2))
    page.click("#create-machine")
    expect(page).to_have_url(server.url + "/#/machines/order/1")


def _check_diagram(page: Page, shots: Shots) -> None:
    diagram = page.locator("#machine-diagram svg")
    expect(diagram.locator("g.node")).to_have_count(len(ORDER["states"]))
    expect(diagram.locator("g.edge")).to_have_count(len(ORDER["transitions"]))
    expect(diagram.locator("g.node.initial")).to_have_attribute("data-state", "created")
    labels = diagram.locator("g.edge .tag-text").all_text_contents()
    assert "PAY [ctx.amount > 0]" in labels and "SHIP" in labels
    checksum = compile_definition("order", 1, ORDER).checksum
    expect(page.locator("#machine-checksum")).to_have_text(checksum)
    shots("machine-diagram")


def _current(page: Page) -> str | None:
    return page.locator("#instance-diagram g.node.current").get_attribute("data-state")


def _buttons(page: Page) -> list[str]:
    return page.locator("#event-buttons button.event").evaluate_all(
        "els => els.map(e => e.dataset.event)"
    )


def test_machine_instance_and_events_flow(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    _create_machine_in_editor(page, console_server, shots)
    _check_diagram(page, shots)

    page.get_by_role("link", name="Create instance").click()
    expect(page.locator("#create-card")).to_be_visible()
    page.fill("#create-id", "order-1")
    page.fill("#create-ctx", '{"customer": "alice", "amount": 0}')
    shots("create-instance-form")
    page.click("#create-submit")
    expect(page).to_have_url(console_server.url + "/#/instances/order-1")
    expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
        "data-state", "created"
    )
    assert _buttons(page) == ["PAY", "CANCEL", "QUOTE"]
    expect(page.locator("#history li")).to_have_count(1)
    shots("instance-created")

    # The guard fails (amount is 0): the error shows inline, the state stays.
    page.locator("#event-buttons button[data-event=PAY]").click()
    expect(page.locator("#apply-result .alert.error")).to_contain_text("guard failed")
    expect(page.locator("#apply-result .code")).to_have_text("GUARD_FAILED")
    assert _current(page) == "created"
    shots("guard-failed")

    # Guards see the ctx before the payload merges: QUOTE (a self-transition) sets it.
    page.fill("#event-payload", '{"amount": 25}')
    page.locator("#event-buttons button[data-event=QUOTE]").click()
    expect(page.locator("#apply-result .alert.ok")).to_contain_text("created → created")
    expect(page.locator("#ctx")).to_contain_text('"amount": 25')
    page.fill("#event-payload", "")
    page.locator("#event-buttons button[data-event=PAY]").click()
    expect(page.locator("#instance-diagram g.node.current")).to_have_attribute("data-state", "paid")
    expect(page.locator("#apply-result .alert.ok")).to_contain_text("created → paid")
    assert _buttons(page) == ["SHIP", "CANCEL"]
    expect(page.locator("#ctx")).to_contain_text('"amount": 25')
    expect(page.locator("#history li")).to_have_count(3)
    shots("after-pay")

    # Another client moves the instance: the page follows without a reload.
    with Client(console_server.rcp_address) as other:
        other.apply_event("order-1", "SHIP", payload={"carrier": "ups"})
    expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
        "data-state", "shipped"
    )
    expect(page.locator("#history li")).to_have_count(4)
    expect(page.locator("#history li").first).to_contain_text("SHIP")
    assert _buttons(page) == ["DELIVER", "PING"]
    expect(page.locator("#ctx")).to_contain_text('"carrier": "ups"')
    shots("moved-by-other-client")

    with Client(console_server.rcp_address) as other:
        other.apply_event("order-1", "DELIVER")
    expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
        "data-state", "delivered"
    )
    expect(page.locator("#event-buttons")).to_contain_text("it is final")
    shots("final-state")


def test_a_stale_page_shows_the_conflict_inline(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("order", 1, ORDER)
        client.create_instance("order", 1, instance_id="c-1", initial_ctx={"amount": 3})
        # Without its live stream the page cannot know about the next change.
        page.route("**/events/stream*", lambda route: route.abort())
        page.goto(console_server.url + "/#/instances/c-1")
        expect(page.locator("#event-buttons button[data-event=PAY]")).to_be_visible()
        client.apply_event("c-1", "CANCEL")
        page.locator("#event-buttons button[data-event=PAY]").click()
        expect(page.locator("#apply-result .code")).to_have_text("CONFLICT")
        expect(page.locator("#apply-result")).to_contain_text("cancelled")
        # The page then shows where the instance really is.
        expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
            "data-state", "cancelled"
        )
        shots("conflict")
        assert client.get_instance("c-1").state == "cancelled"


def test_machine_page_counts_update_live(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("order", 1, ORDER)
        for n in range(3):
            client.create_instance("order", 1, instance_id=f"o-{n}", initial_ctx={"amount": 5})
        page.goto(console_server.url + "/#/machines/order/1")
        counts = page.locator("#state-counts")
        expect(counts.locator("tr[data-state=created] td.num")).to_have_text("3")
        expect(
            page.locator("#machine-diagram g.node[data-state=created] .count text")
        ).to_have_text("3")
        client.apply_event("o-0", "PAY")
        client.apply_event("o-1", "CANCEL")
        expect(counts.locator("tr[data-state=paid] td.num")).to_have_text("1")
        expect(counts.locator("tr[data-state=cancelled] td.num")).to_have_text("1")
        expect(counts.locator("tr[data-state=created] td.num")).to_have_text("1")
        client.create_instance("order", 1, instance_id="o-9")
        expect(counts.locator("tr[data-state=created] td.num")).to_have_text("2")
        expect(page.locator("#instance-total")).to_have_text("4")
        shots("live-counts")

        page.locator("#machine-diagram g.node[data-state=created]").click()
        expect(page.locator("#instances-table tbody tr")).to_have_count(2)
        expect(page.locator("#filter-state")).to_have_value("created")
        shots("instances-filtered")


def test_instance_list_paginates_and_filters_by_version(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("order", 1, ORDER)
        client.put_machine("order", 2, ORDER)
        for n in range(30):
            client.create_instance("order", 1 + n % 2, instance_id=f"i-{n:02d}")
    page.goto(console_server.url + "/#/instances")
    expect(page.locator("#page-info")).to_have_text("1–25 of 30")
    expect(page.locator("#instances-table tbody tr")).to_have_count(25)
    page.click("#page-next")
    expect(page.locator("#page-info")).to_have_text("26–30 of 30")
    expect(page.locator("#page-prev")).to_be_enabled()
    page.select_option("#filter-machine", "order")
    page.select_option("#filter-version", "2")
    expect(page.locator("#page-info")).to_have_text("1–15 of 15")
    versions = page.locator("#instances-table tbody td:nth-child(2)").all_text_contents()
    assert set(versions) == {"order v2"}
    shots("instances-by-version")


def test_storage_page_and_compaction(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("order", 1, ORDER)
        client.create_instance("order", 1, instance_id="s-1")
    page.goto(console_server.url + "/#/storage")
    expect(page.locator("#wal-stats [data-key=entry_count] .stat-value")).to_have_text("2")
    fsyncs = page.locator("#io-stats [data-key=fsyncs] .stat-value")
    expect(fsyncs).not_to_have_text("")
    page.check("#force-snapshot")
    page.click("#compact")
    expect(page.locator("#compact-result .alert.ok")).to_contain_text("Compaction done")
    expect(page.locator("#compact-result")).to_contain_text("snapshots_created")
    shots("storage")


def test_live_tail_filters_and_pause(
    page: Page, console_server: ConsoleServer, shots: Shots
) -> None:
    with Client(console_server.rcp_address) as client:
        client.put_machine("order", 1, ORDER)
        client.put_machine("other", 1, ORDER)
        for n in range(4):
            client.create_instance("order", 1, instance_id=f"t-{n}", initial_ctx={"amount": 1})
        client.create_instance("other", 1, instance_id="x-1", initial_ctx={"amount": 1})
        page.goto(console_server.url + "/#/events?machines=order")
        expect(page.locator(".live[data-status=open]")).to_be_visible()
        client.apply_event("x-1", "PAY")
        client.apply_event("t-0", "PAY")
        client.apply_event("t-1", "CANCEL")
        expect(page.locator("#tail tr")).to_have_count(2)
        rows = page.locator("#tail tr").all_text_contents()
        assert "CANCEL" in rows[0] and "t-1" in rows[0] and "PAY" in rows[1]
        assert not any("x-1" in r for r in rows)
        shots("live-tail")
        page.click("#pause")
        expect(page.locator("#display-mode")).to_contain_text("paused")
        client.apply_event("t-2", "PAY")
        expect(page.locator("#stat-total")).to_have_text("3")
        rows = page.locator("#tail tr").all_text_contents()
        assert len(rows) == 2, rows
        page.click("#pause")
        client.apply_event("t-3", "PAY")
        expect(page.locator("#tail tr")).to_have_count(3)
        expect(page.locator("#tail tr").first).to_contain_text("t-3")
