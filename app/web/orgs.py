"""Organizations in the browser: create one, and its settings page (display name, members
and their roles, deletion) for the org's admins and site admins. Profiles show an org's
members and a user's orgs (app.web.browse)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.audit.service import record
from app.auth.accounts import delete_org, get_org, may_manage, org_members, remove_member
from app.auth.models import Organization, User
from app.auth.service import MEMBER_ROLES, add_member, create_org, get_user
from app.db.engine import write_transaction
from app.errors import AtriumError, Forbidden
from app.web.pages import Page, PageDep

router = APIRouter()


def _require_admin(page: Page, org: Organization) -> None:
    if not may_manage(page.db, page.require_user(), org):
        raise Forbidden(f"Only admins of {org.name} may change its settings")


@router.get("/organizations/new")
def new_org_form(page: PageDep) -> Response:
    page.require_user()
    return page.render("org_new.html", form={})


@router.post("/organizations/new")
async def new_org(page: PageDep) -> Response:
    form = await page.form()
    principal = page.require_user()
    name, fullname = form.get("name", "").strip(), form.get("fullname", "").strip()[:200]
    try:
        with write_transaction(page.request.app.state.sessionmaker) as db:
            owner = db.get(User, principal.user.id if principal.user else -1)
            assert owner is not None
            org = create_org(db, name, owner)
            org.fullname = fullname or None
            record(db, page.actor(), "org.create", name, owner=owner.name)
    except AtriumError as exc:
        return page.render("org_new.html", status_code=exc.status, form=form, error=exc.message)
    return page.redirect(f"/organizations/{name}/settings")


def _settings(page: Page, org_name: str, **context: Any) -> Response:
    org = get_org(page.db, org_name)
    _require_admin(page, org)
    members = org_members(page.db, org)
    return page.render("org_settings.html", org=org, members=members, roles=MEMBER_ROLES, **context)


@router.get("/organizations/{org_name}/settings")
def org_settings(page: PageDep, org_name: str) -> Response:
    return _settings(page, org_name)


async def _change(page: Page, org_name: str, action: str, **fields: str) -> Response:
    """Apply one settings change as the signed-in org admin; the page again, with its error."""
    form = await page.form()
    org = get_org(page.db, org_name)
    _require_admin(page, org)
    try:
        with write_transaction(page.request.app.state.sessionmaker) as db:
            target = get_org(db, org_name)
            if action == "member":
                user = get_user(db, form.get("user", "").strip())
                add_member(db, target, user, form.get("role", "read"))
                record(db, page.actor(), "org.member", org_name, user=user.name, role=form["role"])
            elif action == "remove":
                remove_member(db, target, get_user(db, fields["user"]))
                record(db, page.actor(), "org.member.remove", org_name, user=fields["user"])
            elif action == "profile":
                target.fullname = form.get("fullname", "").strip()[:200] or None
            elif action == "delete":
                delete_org(db, target)
                record(db, page.actor(), "org.delete", org_name)
    except AtriumError as exc:
        page.db.rollback()
        return _settings(page, org_name, error=exc.message)
    if action == "delete":
        return page.redirect("/")
    return page.redirect(f"/organizations/{org_name}/settings")


@router.post("/organizations/{org_name}/settings/members")
async def org_member(page: PageDep, org_name: str) -> Response:
    return await _change(page, org_name, "member")


@router.post("/organizations/{org_name}/settings/members/{user}/remove")
async def org_remove(page: PageDep, org_name: str, user: str) -> Response:
    return await _change(page, org_name, "remove", user=user)


@router.post("/organizations/{org_name}/settings/profile")
async def org_profile(page: PageDep, org_name: str) -> Response:
    return await _change(page, org_name, "profile")


@router.post("/organizations/{org_name}/settings/delete")
async def org_delete(page: PageDep, org_name: str) -> Response:
    return await _change(page, org_name, "delete")
