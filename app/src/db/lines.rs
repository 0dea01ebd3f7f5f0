//! Ordered delivery: each ordered webhook's line. A delivery's place (`line_seq`) is given in
//! the transaction that stores it, from its webhook's counter in `webhook_usage`, whose row
//! stays locked until that transaction commits: places follow the order in which events were
//! committed, even with several Herald processes accepting events at once. The engine sends a
//! line's deliveries one at a time by place; a delivery that ends failed is the line's
//! `line_blocked_by` and holds back the rest until it is re-sent (it takes its place again at
//! the head) or a person skips it.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{
    prelude::Expr, sea_query::ExprTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Statement,
};
use uuid::Uuid;

use super::entities::{deliveries, webhook_usage, webhooks};
use crate::models::{DeliveryId, DeliveryStatus, WebhookId};

/// Takes `count` places in the line of each webhook (ordered webhooks only), in webhook id
/// order so that two transactions never wait for each other's rows crosswise. Answers the
/// first place of each; their usage rows stay locked until the caller commits.
pub async fn reserve(
    txn: &impl ConnectionTrait,
    counts: &BTreeMap<Uuid, i64>,
) -> Result<HashMap<Uuid, i64>, DbErr> {
    let mut first = HashMap::new();
    for (&webhook_id, &count) in counts {
        let rows = webhook_usage::Entity::update_many()
            .col_expr(webhook_usage::Column::LineSeq, Expr::col(webhook_usage::Column::LineSeq).add(count))
            .filter(webhook_usage::Column::WebhookId.eq(webhook_id))
            .exec_with_returning(txn)
            .await?;
        if let Some(usage) = rows.first() {
            first.insert(webhook_id, usage.line_seq - count + 1);
        }
    }
    Ok(first)
}

/// Gives a place to the webhook's scheduled deliveries that have none (those queued before it
/// was ordered, or queued again since), after every place taken so far, oldest first. Run when
/// ordering is switched on, and after deliveries of an ordered webhook are queued again.
pub async fn number_unplaced(txn: &impl ConnectionTrait, webhook_id: Uuid) -> Result<u64, DbErr> {
    let count = unplaced(txn, webhook_id).await? as i64;
    if count == 0 {
        return Ok(0);
    }
    let Some(&first) = reserve(txn, &BTreeMap::from([(webhook_id, count)])).await?.get(&webhook_id) else {
        return Ok(0);
    };
    let backend = txn.get_database_backend();
    let p = |n: usize| if backend == DbBackend::Postgres { format!("${n}") } else { format!("?{n}") };
    let statement = format!(
        r#"UPDATE "deliveries" SET "line_seq" = {base} + s.place
           FROM (SELECT "id", ROW_NUMBER() OVER (ORDER BY "created_at", "id") AS place FROM "deliveries"
                 WHERE "webhook_id" = {webhook} AND "line_seq" IS NULL AND "next_attempt_at" IS NOT NULL) AS s
           WHERE "deliveries"."id" = s."id""#,
        base = p(1),
        webhook = p(2),
    );
    let values = vec![(first - 1).into(), webhook_id.into()];
    Ok(txn.execute_raw(Statement::from_sql_and_values(backend, statement, values)).await?.rows_affected())
}

/// How many scheduled deliveries of the webhook have no place in its line.
pub async fn unplaced(db: &impl ConnectionTrait, webhook_id: Uuid) -> Result<u64, DbErr> {
    deliveries::Entity::find()
        .filter(deliveries::Column::WebhookId.eq(webhook_id))
        .filter(deliveries::Column::LineSeq.is_null())
        .filter(deliveries::Column::NextAttemptAt.is_not_null())
        .count(db)
        .await
}

/// After deliveries were queued again (a re-send, a bulk re-send, a recovery): those of ordered
/// webhooks that had no place get one. Ordered webhooks are few; the rest pay one small read.
pub async fn place_requeued(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let ordered: Vec<Uuid> = webhooks::Entity::find()
        .filter(webhooks::Column::OrderedSince.is_not_null())
        .all(txn)
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    for webhook_id in ordered {
        number_unplaced(txn, webhook_id).await?;
    }
    Ok(())
}

/// Of these usage rows, the blockers that still block: their webhook is ordered and the
/// delivery is still failed (a re-sent one is queued again, a skipped one is no longer named).
pub async fn still_blocking(
    db: &impl ConnectionTrait,
    usage: impl IntoIterator<Item = (bool, Option<Uuid>)>,
) -> Result<HashSet<Uuid>, DbErr> {
    let named: Vec<Uuid> = usage.into_iter().filter_map(|(ordered, b)| b.filter(|_| ordered)).collect();
    if named.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(deliveries::Entity::find()
        .filter(deliveries::Column::Id.is_in(named))
        .filter(deliveries::Column::Status.eq(DeliveryStatus::Failed))
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect())
}

/// How many deliveries wait in an ordered webhook's line.
pub async fn waiting(db: &impl ConnectionTrait, webhook_id: Uuid) -> Result<u64, DbErr> {
    deliveries::Entity::find()
        .filter(deliveries::Column::WebhookId.eq(webhook_id))
        .filter(deliveries::Column::LineSeq.is_not_null())
        .filter(deliveries::Column::NextAttemptAt.is_not_null())
        .count(db)
        .await
}

/// Why a skip was refused.
#[derive(Debug, PartialEq)]
pub enum SkipRefused {
    NoWebhook,
    NotOrdered,
    /// The line is not blocked by that delivery (any more): it was re-sent, skipped or never
    /// blocked it. Carries the delivery that blocks it now, if any.
    NotBlocking(Option<DeliveryId>),
}

impl SkipRefused {
    /// Why, for the API and the admin app alike.
    pub fn describe(&self, delivery: DeliveryId) -> String {
        match self {
            SkipRefused::NoWebhook => "No such webhook.".into(),
            SkipRefused::NotOrdered => {
                "This webhook does not deliver in order: no delivery blocks the others.".into()
            }
            SkipRefused::NotBlocking(Some(now)) => {
                format!("Delivery {delivery} does not block this webhook's line; delivery {now} does.")
            }
            SkipRefused::NotBlocking(None) => format!(
                "Delivery {delivery} does not block this webhook's line (it was re-sent or skipped \
                 already); nothing blocks it now."
            ),
        }
    }
}

/// A person lets an ordered webhook's line go on past the failed delivery that blocks it. The
/// delivery stays failed (it can still be re-sent); the activity log says who skipped what.
/// Answers how many deliveries wait in the line behind it.
pub async fn skip(
    db: &DatabaseConnection,
    webhook: WebhookId,
    delivery: DeliveryId,
    actor: &str,
) -> Result<Result<u64, SkipRefused>, DbErr> {
    let txn = super::begin_write(db).await?;
    let Some(w) = webhooks::Entity::find_by_id(webhook.0).one(&txn).await? else {
        return Ok(Err(SkipRefused::NoWebhook));
    };
    if w.ordered_since.is_none() {
        return Ok(Err(SkipRefused::NotOrdered));
    }
    let blocker =
        webhook_usage::Entity::find_by_id(webhook.0).one(&txn).await?.and_then(|u| u.line_blocked_by);
    let blocking = still_blocking(&txn, [(true, blocker)]).await?;
    if blocker != Some(delivery.0) || !blocking.contains(&delivery.0) {
        let now_blocking = blocker.filter(|b| blocking.contains(b)).map(DeliveryId);
        return Ok(Err(SkipRefused::NotBlocking(now_blocking)));
    }
    webhook_usage::Entity::update_many()
        .col_expr(webhook_usage::Column::LineBlockedBy, Expr::value(Option::<Uuid>::None))
        .filter(webhook_usage::Column::WebhookId.eq(webhook.0))
        .filter(webhook_usage::Column::LineBlockedBy.eq(delivery.0))
        .exec(&txn)
        .await?;
    let behind = waiting(&txn, webhook.0).await?;
    let event_type =
        deliveries::Entity::find_by_id(delivery.0).one(&txn).await?.map(|d| d.event_type).unwrap_or_default();
    super::activity::record(
        &txn,
        super::activity::Activity {
            actor: Some(actor),
            kind: "delivery.skipped",
            subject: Some(w.name.clone()),
            summary: format!(
                "Skipped failed delivery {delivery} ({event_type}) in the ordered line of webhook {}; \
                 {behind} deliveries behind it go on",
                w.name
            ),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(behind))
}
