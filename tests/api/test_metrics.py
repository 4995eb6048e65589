"""GET /metrics: scraped in the Prometheus text format, with request, search-stage, index and SLA metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import anonymous, create, kb_of, search_ids, sysadmin


def _scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = sysadmin(client).get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_requests_searches_index_and_sla(client: TestClient) -> None:
    create(client, "打印机 脱机 状态 无法 打印,重启 Print Spooler 服务后 恢复。", title="打印机脱机")
    assert search_ids(client, "打印机 脱机")
    ticket = client.post("/tickets", json={"title": "打印机脱机", "service": "日常服务"}).json()["ticket"]["id"]
    kb_of(client).desk.set_sla_state(ticket, "at_risk", "tester")

    samples = _scrape(client)
    requests = samples["kb_http_request_duration_seconds_count"]
    assert requests[(("method", "GET"), ("route", "/search"), ("status", "200"))] == 1
    assert requests[(("method", "POST"), ("route", "/tickets"), ("status", "201"))] == 1
    assert samples["kb_search_duration_seconds_count"][(("mode", "hybrid"),)] >= 2  # search + suggestions
    stages = samples["kb_search_stage_duration_seconds_count"]
    assert {dict(k)["stage"] for k in stages} == {"analyze", "bm25", "vector", "rank"}
    assert samples["kb_index_pending_changes"][()] == 0
    assert samples["kb_articles"][()] == samples["kb_index_articles"][()] == 1
    assert samples["kb_index_chunks"][()] == samples["kb_index_vectors"][()] >= 1
    open_tickets = samples["kb_tickets_open"]
    assert open_tickets[(("sla_state", "at_risk"),)] == 1
    assert open_tickets[(("sla_state", "breached"),)] == open_tickets[(("sla_state", "ok"),)] == 0

    again = _scrape(client)  # the first scrape is itself a request, labelled by its route template
    assert (
        again["kb_http_request_duration_seconds_count"][(("method", "GET"), ("route", "/metrics"), ("status", "200"))]
        == 1
    )


def test_metrics_need_the_metrics_permission(client: TestClient) -> None:
    assert anonymous(client).get("/metrics").status_code == 401
    unknown = client.get("/no/such/path")
    assert unknown.status_code == 404
    labels = _scrape(client)["kb_http_request_duration_seconds_count"]
    assert labels[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
