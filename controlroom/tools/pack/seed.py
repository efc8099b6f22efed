"""Create and fill the enterprise database with a fictional company (deterministic).

Example Corp has about 200 employees in nine departments, an org chart three to four
levels deep, vendor invoices, payments, tickets and a little mail. Eleven people are fixed,
because the sample user directory (``controlroom init``) signs in as them:

======  ==================  ==========================  ===========
login   name                title                       reports to
======  ==================  ==========================  ===========
frank   Frank Osei          Chief Executive Officer     -
ivy     Ivy Lindqvist       Chief Financial Officer     frank
bob     Bob Okafor          Finance Manager             ivy
alice   Alice Martin        Accounts Payable Clerk      bob
helen   Helen Park          Head of People              frank
dave    Dave Santos         HR Business Partner         helen
erin    Erin Walsh          VP Engineering              frank
carol   Carol Chen          Senior Software Engineer    erin
gina    Gina Romero         Service Desk Analyst        gwen
hank    Hank Mills          Engineering Intern          erin
gwen    Gwen Ferreira       Service Desk Lead           (IT head)
======  ==================  ==========================  ===========

Everyone else is generated from a seeded random generator, so the same seed gives the
same company, byte for byte apart from timestamps.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from controlroom.tools.pack.company import (
    DEPARTMENTS,
    FIRST,
    FIXED,
    HEAD_TITLES,
    HEADS,
    LAST,
    LOCATIONS,
    TICKET_TOPICS,
    VENDORS,
    Person,
)
from controlroom.tools.pack.db import DOMAIN, create_database, now


def _people(rng: random.Random, total: int) -> list[Person]:
    people = [Person(**vars(p)) for p in FIXED]
    taken = {p.name for p in people}
    logins = {p.login for p in people}

    def new(title: str, dept: str, manager: str | None, salary: int) -> Person:
        while True:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if name not in taken:
                break
        taken.add(name)
        first, last = name.split(" ", 1)
        base = (first[0] + last).lower().replace("ö", "o").replace(" ", "")
        login, n = base, 1
        while login in logins:
            n += 1
            login = f"{base}{n}"
        logins.add(login)
        person = Person(f"E{len(people) + 1:04d}", login, name, title, dept, manager, salary)
        people.append(person)
        return person

    heads = dict(HEADS)
    for dept, title in HEAD_TITLES.items():
        heads[dept] = new(title, dept, "E0001", rng.randrange(160, 230) * 1000).id
    people[10].manager = heads["it"]  # gwen leads the service desk
    weights = {d: share for d, (share, _, _) in DEPARTMENTS.items()}
    remaining = max(total - len(people), 0)
    budget = {d: remaining * w // sum(weights.values()) for d, w in weights.items()}
    budget["engineering"] += remaining - sum(budget.values())
    for dept, (_, titles, lead_title) in DEPARTMENTS.items():
        count = budget[dept]
        leads = [heads[dept]]
        if dept == "finance":
            leads.append("E0003")  # bob leads accounts payable
        for _ in range(max(count // 9, 0)):
            if count <= 0:
                break
            leads.append(new(lead_title, dept, heads[dept], rng.randrange(115, 170) * 1000).id)
            count -= 1
        for i in range(count):
            salary = rng.randrange(52, 145) * 1000 + rng.choice((0, 500))
            new(rng.choice(titles), dept, leads[i % len(leads)], salary)
    start = date(2012, 1, 1)
    for p in people:
        p.location = rng.choice(LOCATIONS)
        p.hired_on = (start + timedelta(days=rng.randrange(0, 4700))).isoformat()
    return people


def seed_database(
    path: Path, *, employees: int = 200, seed: int = 7, force: bool = False
) -> dict[str, int]:
    """Create the database at ``path`` with a fictional company; returns row counts.

    An existing file is kept unless ``force`` (then it is replaced). The new file is
    owner-only (0600, see :func:`~controlroom.tools.pack.db.create_database`).
    """
    if path.exists():
        if not force:
            raise FileExistsError(str(path))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    rng = random.Random(seed)
    conn = create_database(path)
    try:
        conn.execute("BEGIN")
        people = _people(rng, employees)
        conn.executemany(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.id,
                    p.login,
                    p.name,
                    f"{p.login}@{DOMAIN}",
                    p.title,
                    p.department,
                    p.manager,
                    p.location,
                    p.hired_on,
                    p.salary,
                )
                for p in people
            ],
        )
        _finance(conn, rng)
        _tickets(conn, rng, people)
        _mail(conn)
        conn.execute("COMMIT")
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("employees", "invoices", "payments", "tickets", "mail")
        }
    finally:
        conn.close()


def _finance(conn: sqlite3.Connection, rng: random.Random) -> None:
    fixed = [
        ("INV-1001", "Northwind Traders", 125000),
        ("INV-1002", "Contoso Cleaning", 48050),
        ("INV-1003", "Fabrikam Hardware", 1899000),
        ("INV-1004", "Tailspin Toys", 760000),
        ("INV-1005", "Litware Inc", 1240000),
        ("INV-1006", "Proseware", 6400000),
    ]
    rows = [(i, v, c, "open") for i, v, c in fixed]
    for n in range(7, 61):
        amount = round(10 ** rng.uniform(2.2, 4.9), 2)
        rows.append(
            (
                f"INV-{1000 + n}",
                rng.choice(VENDORS),
                int(amount * 100),
                "paid" if rng.random() < 0.35 else "open",
            )
        )
    depts = ("operations", "engineering", "marketing", "it", "sales", "facilities")
    issued = date(2025, 1, 6)
    payments: list[tuple[str, str, int, str, str, str | None]] = [
        ("PAY-0001", "INV-1004", 200000, "scheduled", "alice", None),
        ("PAY-0002", "INV-1005", 500000, "scheduled", "bob", None),
    ]
    for n, (inv, vendor, amount, status) in enumerate(rows):
        day = issued + timedelta(days=3 * n)
        conn.execute(
            "INSERT INTO invoices VALUES (?, ?, ?, 'EUR', ?, ?, ?, ?)",
            (
                inv,
                vendor,
                amount,
                rng.choice(depts),
                day.isoformat(),
                (day + timedelta(days=30)).isoformat(),
                status,
            ),
        )
        if status == "paid":
            payments.append(
                (
                    f"PAY-{len(payments) + 1:04d}",
                    inv,
                    amount,
                    "released",
                    rng.choice(("alice", "bob")),
                    "ivy",
                )
            )
    stamp = now()
    for pid, inv, amount, status, by, released in payments:
        conn.execute(
            "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
            (pid, inv, amount, status, by, stamp, released, stamp if released else None),
        )


def _tickets(conn: sqlite3.Connection, rng: random.Random, people: list[Person]) -> None:
    by_dept: dict[str, list[str]] = {}
    for p in people:
        by_dept.setdefault(p.department, []).append(p.login)
    desk = {
        "it": by_dept["it"],
        "facilities": by_dept["operations"],
        "hr": by_dept["hr"],
        "finance": by_dept["finance"],
    }
    fixed = [
        ("Laptop battery is swelling", "it", "high", "open", "carol", "gina"),
        ("VPN access for my first week", "it", "normal", "open", "hank", None),
        ("Question about parental leave", "hr", "normal", "in_progress", "alice", "dave"),
        ("Meeting room 3B projector broken", "facilities", "low", "open", "dave", None),
        ("Expense report stuck in review", "finance", "normal", "open", "carol", "alice"),
    ]
    rows = list(fixed)
    logins = [p.login for p in people]
    for _ in range(75):
        queue = rng.choices(("it", "facilities", "hr", "finance"), (50, 20, 15, 15))[0]
        rows.append(
            (
                rng.choice(TICKET_TOPICS[queue]),
                queue,
                rng.choices(("low", "normal", "high", "critical"), (30, 50, 17, 3))[0],
                rng.choices(("open", "in_progress", "closed"), (45, 25, 30))[0],
                rng.choice(logins),
                rng.choice(desk[queue]) if rng.random() < 0.7 else None,
            )
        )
    stamp = now()
    for n, (title, queue, priority, status, reporter, assignee) in enumerate(rows, start=1001):
        conn.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"TCK-{n}",
                title,
                f"{title}. Reported by {reporter}.",
                queue,
                priority,
                status,
                reporter,
                assignee,
                stamp,
                stamp,
                "resolved" if status == "closed" else None,
            ),
        )


def _mail(conn: sqlite3.Connection) -> None:
    stamp = now()
    rows = [
        (
            "MSG-00001",
            "outbox",
            "bob",
            [f"ivy@{DOMAIN}"],
            "Payment run this Friday",
            "Hi Ivy, the payment run is ready for your review.",
        ),
        (
            "MSG-00002",
            "drafts",
            "alice",
            [f"bob@{DOMAIN}"],
            "Northwind invoice",
            "Bob, INV-1001 is due next week.",
        ),
    ]
    for mid, folder, sender, to, subject, body in rows:
        conn.execute(
            "INSERT INTO mail VALUES (?, ?, ?, ?, '[]', ?, ?, ?)",
            (mid, folder, sender, json.dumps(to), subject, body, stamp),
        )
