"""Example Corp's fixed facts: names, departments, vendors, ticket topics, fixed people.

The fixed people are the users of the sample directory (``controlroom init``); everything
else is drawn from these lists by :mod:`controlroom.tools.pack.seed`.
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Aisha Ben Chiara Dmitri Elena Felix Grace Hugo Ines Jonas Keiko Liam Maya Noah Olga Pablo "
    "Quinn Rosa Samir Tara Umar Vera Wei Ximena Yara Zane Amir Bianca Caleb Daria Emil Fatima "
    "Gabriel Hana Isaac Jana Kofi Lena Mateo Nadia Omar Priya Rafael Sofia Tomas Uma Viktor "
    "Wanda Yusuf Zoe Anton Beatriz Cyrus Dalia Elias Freya Goran Hiro Ingrid Jamal"
)
LAST = _words(
    "Abara Bauer Castillo Dubois Eriksen Fontaine Gallo Haddad Ibsen Jansen Kowalski Larsen "
    "Moreau Nakamura Oyelaran Petrov Quintero Rossi Schmidt Tanaka Ueda Varga Novak Xu Yilmaz "
    "Zielinski Adeyemi Brennan Costa Dalton Ekström Ferreira Grant Horvat Iverson Jovanovic "
    "Kaur Lindgren Mensah Nilsen Okonkwo Pereira Reyes Silva Takahashi Vidal Weber Young"
)
LOCATIONS = ("Lisbon", "Berlin", "Toronto", "Austin", "Remote")
DEPARTMENTS = {  # department: (share of the generated staff, member titles, lead title)
    "engineering": (
        30,
        (
            "Software Engineer",
            "Senior Software Engineer",
            "QA Engineer",
            "Site Reliability Engineer",
            "Staff Engineer",
        ),
        "Engineering Manager",
    ),
    "sales": (
        18,
        ("Account Executive", "Sales Development Representative", "Solutions Consultant"),
        "Sales Manager",
    ),
    "operations": (
        13,
        ("Operations Analyst", "Facilities Coordinator", "Logistics Specialist"),
        "Operations Manager",
    ),
    "marketing": (
        9,
        ("Marketing Specialist", "Content Writer", "Product Marketing Manager"),
        "Marketing Lead",
    ),
    "it": (7, ("Service Desk Analyst", "Systems Administrator", "Network Engineer"), "IT Lead"),
    "finance": (8, ("Financial Analyst", "Accountant", "Payroll Specialist"), "Controller"),
    "hr": (5, ("HR Generalist", "Recruiter", "People Operations Specialist"), "HR Lead"),
    "legal": (3, ("Legal Counsel", "Paralegal"), "Senior Counsel"),
    "executive": (1, ("Executive Assistant", "Chief of Staff"), "Chief of Staff"),
}
HEAD_TITLES = {
    "sales": "VP Sales",
    "operations": "VP Operations",
    "marketing": "VP Marketing",
    "it": "Head of IT",
    "legal": "General Counsel",
}
VENDORS = (
    "Northwind Traders",
    "Contoso Cleaning",
    "Fabrikam Hardware",
    "Tailspin Toys",
    "Litware Inc",
    "Adventure Works",
    "Proseware",
    "Wide World Importers",
    "Alpine Ski House",
    "Coho Winery",
    "Lucerne Publishing",
    "Fourth Coffee",
    "Trey Research",
    "Humongous Insurance",
    "City Power & Light",
    "Southridge Video",
    "VanArsdel Ltd",
    "Blue Yonder Airlines",
)
TICKET_TOPICS = {
    "it": (
        "Laptop will not boot",
        "VPN drops every hour",
        "Request access to the data warehouse",
        "Printer on floor 2 jams",
        "Reset multi-factor authentication",
        "Monitor flickers",
        "Shared drive is full",
        "New starter needs an account",
    ),
    "facilities": (
        "Meeting room AC too cold",
        "Broken chair in open space",
        "Badge does not open the garage",
        "Coffee machine leaking",
        "Desk lamp missing",
    ),
    "hr": (
        "Question about parental leave",
        "Update my bank details",
        "Request an employment letter",
        "Training budget question",
        "Report a concern confidentially",
    ),
    "finance": (
        "Expense report rejected",
        "Corporate card limit increase",
        "Missing per diem",
        "Vendor asks about late payment",
    ),
}


@dataclass
class Person:
    id: str
    login: str
    name: str
    title: str
    department: str
    manager: str | None
    salary: int
    location: str = "Lisbon"
    hired_on: str = "2019-03-01"


FIXED = [
    Person("E0001", "frank", "Frank Osei", "Chief Executive Officer", "executive", None, 310000),
    Person("E0002", "ivy", "Ivy Lindqvist", "Chief Financial Officer", "finance", "E0001", 240000),
    Person("E0003", "bob", "Bob Okafor", "Finance Manager", "finance", "E0002", 135000),
    Person("E0004", "alice", "Alice Martin", "Accounts Payable Clerk", "finance", "E0003", 62000),
    Person("E0005", "helen", "Helen Park", "Head of People", "hr", "E0001", 185000),
    Person("E0006", "dave", "Dave Santos", "HR Business Partner", "hr", "E0005", 88000),
    Person("E0007", "erin", "Erin Walsh", "VP Engineering", "engineering", "E0001", 215000),
    Person(
        "E0008", "carol", "Carol Chen", "Senior Software Engineer", "engineering", "E0007", 142000
    ),
    Person("E0009", "gina", "Gina Romero", "Service Desk Analyst", "it", "E0011", 67000),
    Person("E0010", "hank", "Hank Mills", "Engineering Intern", "engineering", "E0007", 32000),
    Person("E0011", "gwen", "Gwen Ferreira", "Service Desk Lead", "it", None, 78000),
]
HEADS = {"executive": "E0001", "finance": "E0002", "hr": "E0005", "engineering": "E0007"}
