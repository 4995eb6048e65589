"""Replay real tickets through the desk loop and write the operations analysis (运维分析) it produces.

    python bench/tickets.py --data-dir var/tickets     # the 47,837 it-tickets-en tickets, embedded
    python bench/desk_replay.py --data-dir var/tickets # copies that knowledge base, replays 300 tickets

What is real: the ticket texts and their topic groups (it-tickets-en), the assignment suggestions (the kNN vote of
``kb.desk.suggest`` over the other 47,537 tickets, whose 300 originals are removed first), the SLA clocks and the
analysis. What is simulated (seeded, so every run is the same): arrivals every 20 minutes from Monday 2026-11-23
08:00 Asia/Shanghai, channel mix, the minutes each step takes, satisfaction. An agent assigns to the suggested
group; a wrong suggestion is corrected by a reassignment to the ticket's true group. Service types follow the topic
group (:data:`SERVICE_OF`), an assumption of this replay.

Writes ``<out>/analysis-replay.json``, ``<out>/analysis-replay.csv`` and ``<out>/analysis-replay.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import delete, select

from kb.config import Settings
from kb.desk.analysis import as_csv
from kb.desk.workflow import Closure, NewTicket
from kb.models import Ticket
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261123
REPLAYED = 300
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SERVICE_OF = {
    "Hardware": "日常服务",
    "Access": "日常服务",
    "Administrative rights": "日常服务",
    "HR Support": "咨询",
    "Miscellaneous": "咨询",
    "Purchase": "数据提供",
    "Storage": "数据维护",
    "Internal Project": "接口接入",
}
CHANNELS = (("web", 0.45), ("email", 0.25), ("im", 0.15), ("phone", 0.15))
SATISFACTION = ((5, 0.6), (4, 0.25), (3, 0.1), (2, 0.05))


class Clock:
    """The replay's simulated "now"."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="knowledge base made by bench/tickets.py")
    parser.add_argument("--model-cache", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory(prefix="kb-replay-") as tmp:
        shutil.copytree(args.data_dir, tmp, dirs_exist_ok=True)
        kb = KnowledgeBase(Settings(data_dir=Path(tmp), model_cache=args.model_cache)).open()
        try:
            report = replay(kb, rng)
        finally:
            kb.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analysis-replay.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    (args.out / "analysis-replay.csv").write_text(as_csv(report), encoding="utf-8")
    (args.out / "analysis-replay.md").write_text(summary(report), encoding="utf-8")
    print(summary(report))


def replay(kb: KnowledgeBase, rng: np.random.Generator) -> dict[str, object]:
    """Replay :data:`REPLAYED` tickets and return the analysis of their week."""
    with kb.database.session() as session:
        ids = session.scalars(select(Ticket.id).where(Ticket.source == "it-tickets-en").order_by(Ticket.id)).all()
        chosen = sorted(rng.choice(np.array(ids), REPLAYED, replace=False).tolist())
        originals = list(session.scalars(select(Ticket).where(Ticket.id.in_(chosen))))
        session.execute(delete(Ticket).where(Ticket.id.in_(chosen)))  # no ticket may suggest its own original
    clock = Clock(START)
    kb.desk.clock = clock
    for i, original in enumerate(originals):
        opened = START + dt.timedelta(minutes=20 * i)
        clock.now = opened
        service = SERVICE_OF.get(original.resolver_group or "", "日常服务")
        channel = str(rng.choice([c for c, _ in CHANNELS], p=[w for _, w in CHANNELS]))
        new = NewTicket(original.title, original.description, service, channel=channel, opened_at=opened)
        handled = kb.tickets.take_in(new, "replay")
        ticket, found = handled.ticket, handled.suggestions
        assert found is not None
        if found.articles and not found.low_confidence:
            clock.now += dt.timedelta(minutes=int(rng.integers(2, 10)))
            kb.desk.deflect(ticket.id, found.articles[0].article_id, "replay")
            continue
        clock.now += dt.timedelta(minutes=int(rng.integers(3, 30)))
        kb.desk.assign(ticket.id, found.assignment.group or "服务台", "agent")
        if found.assignment.group != original.resolver_group:
            clock.now += dt.timedelta(minutes=int(rng.integers(10, 60)))
            kb.desk.assign(ticket.id, original.resolver_group or "服务台", "agent")
        kb.desk.move(ticket.id, "in_progress", "agent")
        clock.now += dt.timedelta(minutes=int(rng.integers(20, 480)))
        kb.desk.move(ticket.id, "resolved", "agent")
        satisfaction = int(rng.choice([s for s, _ in SATISFACTION], p=[w for _, w in SATISFACTION]))
        kb.desk.close(ticket.id, Closure("（回放）", "（回放）", satisfaction), "agent")
    end = START + dt.timedelta(days=7)
    return kb.analysis.analyze(START.astimezone(dt.UTC), end.astimezone(dt.UTC), now=end.astimezone(dt.UTC)).as_dict()


def summary(report: dict[str, object]) -> str:
    """A Markdown summary of the replay's analysis."""
    sla = report["sla"]
    assert isinstance(sla, dict)
    lines = [
        "# Operations analysis of a replayed week (bench/desk_replay.py)",
        "",
        f"{report['tickets']} real it-tickets-en tickets replayed through the desk "
        "(simulated timings: see the script).",
        "Full report: `analysis-replay.json` / `analysis-replay.csv`.",
        "",
        "| measure | achieved | catalog target |",
        "|---|---|---|",
        f"| satisfaction (share rated 4-5) | {report['satisfaction']['satisfied_share']} | > 0.90 |",  # type: ignore[index]
        f"| response breaches / resolution breaches | {sla['response_breaches']} / {sla['resolution_breaches']} | 0 |",
        f"| reassignment ping-pong (>= 3 moves or sent back) | {report['ping_pong']['count']} | |",  # type: ignore[index]
        f"| deflection rate | {report['deflection_rate']} | |",
        f"| KB coverage | {report['kb_coverage']} | |",
        f"| frequent problems (groups >= 3) | {len(report['frequent_problems'])} | |",  # type: ignore[arg-type]
        "",
        "| service | hours | response target, min | responded | median response, min | within target |",
        "|---|---|---|---|---|---|",
        *[
            f"| {s['service']} | {s['support_hours']} | {s['response_target_minutes']} | {s['responded']} | "
            f"{s['median_response_minutes']} | {s['within_target_share']} |"
            for s in sla["services"]
        ],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
