"""The roles of Labour Atlas users: defined once, here.

A role is stored in ``app_user.role`` (a CHECK constraint lists the values:
add a role here and in one migration). Which routes a role may call is
declared beside each route (:mod:`api.access`); the authorization-matrix
test walks every route with every role, so a new role shows there what it
may reach.
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    """What a user does (see DESIGN.md, "Users and what each one does").

    >>> [r.value for r in Role]
    ['surveyor', 'officer', 'leader', 'police_analyst', 'planner', 'admin']
    """

    surveyor = "surveyor"
    officer = "officer"
    leader = "leader"
    police_analyst = "police_analyst"
    planner = "planner"
    admin = "admin"
