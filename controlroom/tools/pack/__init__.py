"""The built-in enterprise tool pack: HR directory, finance, ticketing and mail.

Fifteen tools over one SQLite database of a fictional company (Example Corp, about 200
employees), created with ``controlroom pack init``. Use them from a workflow file::

    tools:
      - controlroom.tools.pack:tools            # all of them, or one toolset:
      - controlroom.tools.pack:hr_tools         # hr_tools, finance_tools, ticket_tools, mail_tools
    policies: builtin:pack                      # the pack's Cedar policies and schema

The policies (``controlroom/data/policies/pack``) show roles, attribute conditions
(department, clearance, the manager relationship), argument limits (a payment against the
user's ``payment_limit``) and approval rules (mail outside ``example.com``, payments above
10000, critical tickets, releasing a payment).
"""

from __future__ import annotations

from controlroom.tools.pack import finance, hr, mail, tickets
from controlroom.tools.pack.db import COMPANY, DB_ENV, DOMAIN, database_path
from controlroom.tools.pack.seed import seed_database
from controlroom.tools.spec import Tool

hr_tools: list[Tool] = list(hr.TOOLS)
finance_tools: list[Tool] = list(finance.TOOLS)
ticket_tools: list[Tool] = list(tickets.TOOLS)
mail_tools: list[Tool] = list(mail.TOOLS)
tools: list[Tool] = [*hr_tools, *finance_tools, *ticket_tools, *mail_tools]
POLICIES = "builtin:pack"

__all__ = [
    "COMPANY",
    "DB_ENV",
    "DOMAIN",
    "POLICIES",
    "database_path",
    "finance_tools",
    "hr_tools",
    "mail_tools",
    "seed_database",
    "ticket_tools",
    "tools",
]
