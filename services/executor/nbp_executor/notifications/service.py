"""Notification rules (checked before anything is stored) and what a run's ending writes to the outbox."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from nbp_common.auth import Principal, ensure_acting_for, owner_scope
from nbp_common.errors import NotFound
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_executor.notifications.models import Channel, NotificationDelivery, NotificationRule
from nbp_executor.notifications.schemas import NotificationCreate, NotificationOut
from nbp_executor.notifications.targets import check_email, check_webhook, redact
from nbp_executor.runtime import ExecutorRuntime
from nbp_executor.schedules import service as schedules


def rule_out(rule: NotificationRule) -> NotificationOut:
    target = redact(rule.target) if rule.channel == Channel.WEBHOOK else rule.target
    return NotificationOut.model_validate({**_columns(rule), "target": target})


def _columns(rule: NotificationRule) -> dict[str, Any]:
    return {c.key: getattr(rule, c.key) for c in NotificationRule.__table__.columns}


async def create(
    rt: ExecutorRuntime, session: AsyncSession, body: NotificationCreate, principal: Principal
) -> NotificationRule:
    if body.channel == Channel.WEBHOOK:
        target = await check_webhook(body.url)
        secret = body.signing_secret or secrets.token_urlsafe(32)
    else:
        target = check_email(body.email)
        secret = None
    if body.schedule_id is not None:
        schedule = await schedules.get(session, body.schedule_id, principal)
        owner = schedule.username
    else:
        assert body.notebook_id is not None
        notebook = await rt.registry.notebook(body.notebook_id)
        owner = str(notebook["username"])
        if not principal.may_read(owner):
            raise NotFound(f"notebook {body.notebook_id} does not exist")
    ensure_acting_for(principal, owner)
    rule = NotificationRule(
        username=owner,
        schedule_id=body.schedule_id,
        notebook_id=body.notebook_id,
        channel=body.channel.value,
        target=target,
        signing_secret=secret,
        triggers=sorted({t.value for t in body.triggers}),
    )
    session.add(rule)
    await session.commit()
    await session.refresh(rule)
    return rule


async def get(session: AsyncSession, rule_id: int, principal: Principal) -> NotificationRule:
    rule = await session.get(NotificationRule, rule_id, populate_existing=True)
    if rule is None or not principal.may_read(rule.username):
        raise NotFound(f"notification {rule_id} does not exist")
    return rule


async def listing(
    session: AsyncSession, principal: Principal, limit: int, offset: int
) -> tuple[int, Sequence[NotificationRule]]:
    query = select(NotificationRule)
    scope = owner_scope(principal)
    if scope is not None:
        query = query.where(NotificationRule.username == scope)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(NotificationRule.id).limit(limit).offset(offset))
    return int(total or 0), rows.all()


async def delete(session: AsyncSession, rule_id: int, principal: Principal) -> None:
    rule = await get(session, rule_id, principal)
    ensure_acting_for(principal, rule.username)
    await session.delete(rule)
    await session.commit()


async def deliveries(
    session: AsyncSession, rule_id: int, principal: Principal, limit: int, offset: int
) -> tuple[int, Sequence[NotificationDelivery]]:
    await get(session, rule_id, principal)
    where = NotificationDelivery.rule_id == rule_id
    total = await session.scalar(select(func.count()).select_from(NotificationDelivery).where(where))
    rows = await session.scalars(
        select(NotificationDelivery)
        .where(where)
        .order_by(NotificationDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return int(total or 0), rows.all()
