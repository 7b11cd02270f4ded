"""The page's rough edges, in a real browser at 1,280 px: two kinds compared (the fields they share first, then
each kind's own that its jobs set), a diverged loss curve's axis labels and a log-scale loss axis, nothing
running out of its card, and the New job panel folded away for a full-width runs table."""

from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from harness.browser import open_page
from store.engine import make_engine, make_session_factory
from store.points import add_points
from store.unit_of_work import unit_of_work
from tests.conftest import Service

NUMPY_JOB = {"model": "numpy_mlp", "name": "numpy", "hidden_units": [32], "learning_rate": 0.01}
TORCH_JOB = {"model": "torch_mlp", "name": "torch, diverged", "hidden_units": [16], "learning_rate": 0.01,
             "optimizer": "adam", "norm": "batchnorm"}  # fmt: skip
OTHER_TORCH_JOB = {"model": "torch_mlp", "name": "torch, calm", "hidden_units": [16], "learning_rate": 0.01}


def overflowing(page: Page) -> list[str]:
    """What runs out of its card (or the window) on the right: each section whose content is wider than it is,
    and the page itself; a table in a `.table-scroll` box scrolls by design and is not counted."""
    found: list[str] = page.evaluate("""() => {
        const out = [];
        if (document.documentElement.scrollWidth > window.innerWidth) out.push("the page");
        for (const section of document.querySelectorAll("main > section")) {
            if (section.hidden || section.offsetParent === null) continue;
            const edge = section.getBoundingClientRect().right;
            for (const element of section.querySelectorAll("*")) {
                if (element.closest(".table-scroll") && !element.classList.contains("table-scroll")) continue;
                if (element.offsetParent === null) continue;
                const right = element.getBoundingClientRect().right;
                if (right > edge + 1) out.push(`${section.id}: ${element.tagName}#${element.id}`);
            }
        }
        return out;
    }""")  # fmt: skip
    return found


def store_points(database_url: str, job_id: int, losses: list[float]) -> None:
    engine = make_engine(database_url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        add_points(session, job_id, [(10 * (i + 1), "train", loss, 0.1) for i, loss in enumerate(losses)])
        add_points(session, job_id, [(10 * len(losses), "test", losses[-1], 0.1)])
    engine.dispose()


def test_two_kinds_compared_a_diverged_curve_and_nothing_overflows_at_1280_px(
    browser: Browser, service_without_worker: Service, database_url: str
) -> None:
    service = service_without_worker
    with service.client() as client:
        ids = [client.post("/jobs", json=spec).json()["id"] for spec in (NUMPY_JOB, TORCH_JOB, OTHER_TORCH_JOB)]
    store_points(database_url, ids[0], [2.3, 2.1, 1.9, 1.8])
    store_points(database_url, ids[1], [2.3, 40.0, 3_000.0, 250_000.0, 9_000_000.0])  # diverged
    store_points(database_url, ids[2], [2.3, 2.0, 1.7, 1.6])

    page, requests = open_page(browser, service.url)  # 1,280 px wide
    page.goto(f"{service.url}/#compare/{','.join(map(str, ids))}")
    expect(page.locator("#compare-diff tr.group")).to_have_count(1)
    fields = page.locator("#compare-diff tr[data-field]").evaluate_all("(rows) => rows.map((r) => r.dataset.field)")
    # shared by both kinds and different: first; then the torch MLP's own, only those its jobs set
    assert fields == ["hidden_units", "model", "optimizer", "norm"], fields
    expect(page.locator("#compare-diff tr.group")).to_have_text("torch_mlp's own fields, set away from its defaults")
    assert page.locator('#compare-diff tr[data-field="norm"] td').all_inner_texts() == ["", "batchnorm", "none"]

    page.wait_for_function("() => compareCharts.length === 2 && compareCharts[0].axes[1]._values")
    labels: list[str] = page.evaluate("() => compareCharts[0].axes[1]._values")  # the loss axis' tick labels
    assert len(set(labels)) == len(labels) > 2 and all(len(label) <= 7 for label in labels), labels
    assert any("e+6" in label for label in labels), labels  # millions, written short
    page.check("#compare-logy")
    page.wait_for_function("() => compareCharts[0].scales.y.distr === 3")
    assert "logy=1" in page.url  # the URL says what is shown
    assert overflowing(page) == []

    page.goto(f"{service.url}/#job/{ids[1]}")
    expect(page.locator("#job-status")).to_have_text("queued")
    assert overflowing(page) == []

    page.goto(f"{service.url}/#runs")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    assert overflowing(page) == []
    table_width = page.locator("#jobs-section").bounding_box()["width"]  # type: ignore[index]
    page.click("#fold-new-job")  # the runs table takes the whole width
    expect(page.locator("#submit-section")).to_be_hidden()
    assert page.locator("#jobs-section").bounding_box()["width"] > 1.3 * table_width  # type: ignore[index]
    page.reload()  # remembered
    expect(page.locator("#unfold-new-job")).to_be_visible()
    page.click("#unfold-new-job")
    expect(page.locator("#submit-section")).to_be_visible()
    assert requests.refused_by_csp == []
