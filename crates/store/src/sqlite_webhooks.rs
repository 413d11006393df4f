//! [`WebhookStore`] on SQLite: reads from the read pool, every change through the writer task
//! (so an attempt, its delivery's new state and the breaker commit together).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{Row, SqliteConnection};

use super::SqliteMetaStore;
use crate::StoreError;
use crate::webhooks::{
    AfterAttempt, AttemptRecorded, AttemptRow, ClaimedDelivery, DeliveryRow, DeliveryState,
    FinishedAttempt, GitlabTriggerRow, MAX_RESPONSE_EXCERPT, NewDelivery, WebhookDisabled,
    WebhookKind, WebhookOrigin, WebhookRow, WebhookStore,
};

/// The columns [`webhook_row`] reads.
macro_rules! webhook_columns {
    () => {
        "name, origin, kind, url, events, repositories, secret, allow_private, gitlab_project, \
         gitlab_token, gitlab_ref, gitlab_variables, disabled_reason, disabled_at_ms, \
         created_at_ms, updated_at_ms"
    };
}

/// The columns [`delivery_row`] reads.
macro_rules! delivery_columns {
    () => {
        "id, webhook, event_id, event_type, state, attempts, round_attempts, next_attempt_at_ms, \
         created_at_ms, updated_at_ms"
    };
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn json_list(text: &str, what: &str, name: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what} of webhook {name:?}: {e}")))
}

fn webhook_row(row: &sqlx::sqlite::SqliteRow) -> Result<WebhookRow, StoreError> {
    let name: String = row.try_get("name")?;
    let origin: String = row.try_get("origin")?;
    let kind: String = row.try_get("kind")?;
    let events: String = row.try_get("events")?;
    let repositories: String = row.try_get("repositories")?;
    let gitlab = match (
        row.try_get::<Option<String>, _>("gitlab_project")?,
        row.try_get::<Option<String>, _>("gitlab_token")?,
        row.try_get::<Option<String>, _>("gitlab_ref")?,
    ) {
        (Some(project), Some(token), Some(git_ref)) => {
            let variables: Option<String> = row.try_get("gitlab_variables")?;
            let variables = match variables {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("GitLab variables of webhook {name:?}: {e}")))?,
                None => BTreeMap::new(),
            };
            Some(GitlabTriggerRow {
                project,
                token,
                git_ref,
                variables,
            })
        }
        (None, None, None) => None,
        _ => return Err(corrupt(format!("GitLab fields of webhook {name:?}"))),
    };
    let disabled = match (
        row.try_get::<Option<String>, _>("disabled_reason")?,
        row.try_get::<Option<i64>, _>("disabled_at_ms")?,
    ) {
        (Some(reason), Some(at_ms)) => Some(WebhookDisabled { reason, at_ms }),
        _ => None,
    };
    Ok(WebhookRow {
        origin: WebhookOrigin::parse(&origin)
            .ok_or_else(|| corrupt(format!("origin {origin:?} of webhook {name:?}")))?,
        kind: WebhookKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("kind {kind:?} of webhook {name:?}")))?,
        url: row.try_get("url")?,
        events: json_list(&events, "events", &name)?,
        repositories: json_list(&repositories, "repositories", &name)?,
        secret: row.try_get("secret")?,
        allow_private: row.try_get("allow_private")?,
        gitlab,
        disabled,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        name,
    })
}

fn count(row: &sqlx::sqlite::SqliteRow, column: &str, id: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| corrupt(format!("{column} {value} of delivery {id:?}")))
}

fn delivery_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeliveryRow, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    Ok(DeliveryRow {
        webhook: row.try_get("webhook")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| corrupt(format!("state {state:?} of delivery {id:?}")))?,
        attempts: count(row, "attempts", &id)?,
        round_attempts: count(row, "round_attempts", &id)?,
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        id,
    })
}

fn claimed_row(row: &sqlx::sqlite::SqliteRow) -> Result<ClaimedDelivery, StoreError> {
    Ok(ClaimedDelivery {
        delivery: delivery_row(row)?,
        body: row.try_get("body")?,
        claim: row.try_get("claim")?,
    })
}

fn attempt_row(row: &sqlx::sqlite::SqliteRow) -> Result<AttemptRow, StoreError> {
    let delivery: String = row.try_get("delivery")?;
    let number: i64 = row.try_get("number")?;
    let status: Option<i64> = row.try_get("status")?;
    let duration_ms: i64 = row.try_get("duration_ms")?;
    let bad = |what: &str| {
        corrupt(format!(
            "{what} of attempt {number} of delivery {delivery:?}"
        ))
    };
    Ok(AttemptRow {
        number: u32::try_from(number).map_err(|_| bad("number"))?,
        status: status
            .map(u16::try_from)
            .transpose()
            .map_err(|_| bad("status"))?,
        error: row.try_get("error")?,
        duration_ms: u64::try_from(duration_ms).map_err(|_| bad("duration"))?,
        response: row.try_get("response")?,
        attempted_at_ms: row.try_get("attempted_at_ms")?,
        delivery,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(e.to_string()))
}

/// Applies what follows an attempt to a delivery held under `claim`; false if the claim was
/// superseded.
async fn apply_after_attempt(
    conn: &mut SqliteConnection,
    result: &FinishedAttempt,
    webhook: &str,
) -> Result<bool, StoreError> {
    let (state, next_at) = match &result.next {
        AfterAttempt::Delivered => (DeliveryState::Delivered, None),
        AfterAttempt::RetryAt { at_ms } => (DeliveryState::Pending, Some(*at_ms)),
        AfterAttempt::Failed => (DeliveryState::Failed, None),
        AfterAttempt::DisableWebhook { .. } => (DeliveryState::Disabled, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = ?, next_attempt_at_ms = ?, \
         round_attempts = round_attempts + 1, claim = NULL, lease_until_ms = NULL, \
         updated_at_ms = ? WHERE id = ? AND claim = ?",
    )
    .bind(state.as_str())
    .bind(next_at)
    .bind(result.now_ms)
    .bind(&result.delivery)
    .bind(&result.claim)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if let AfterAttempt::DisableWebhook { reason } = &result.next {
        sqlx::query(
            "UPDATE webhooks SET disabled_reason = ?, disabled_at_ms = ? \
             WHERE name = ? AND disabled_at_ms IS NULL",
        )
        .bind(reason)
        .bind(result.now_ms)
        .bind(webhook)
        .execute(&mut *conn)
        .await?;
        // Deliveries in flight lose their claims too: their late results only get logged.
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'disabled', next_attempt_at_ms = NULL, \
             claim = NULL, lease_until_ms = NULL, updated_at_ms = ? \
             WHERE webhook = ? AND state = 'pending'",
        )
        .bind(result.now_ms)
        .bind(webhook)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

async fn save_breaker_in(
    conn: &mut SqliteConnection,
    webhook: &str,
    state: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_breakers (webhook, state, updated_at_ms) \
         SELECT ?1, json(?2), ?3 WHERE EXISTS (SELECT 1 FROM webhooks WHERE name = ?1) \
         ON CONFLICT (webhook) DO UPDATE SET state = excluded.state, \
         updated_at_ms = excluded.updated_at_ms",
    )
    .bind(webhook)
    .bind(state)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteMetaStore {
    async fn put_webhook(&self, row: &WebhookRow) -> Result<bool, StoreError> {
        let events = to_json(&row.events)?;
        let repositories = to_json(&row.repositories)?;
        let variables = row
            .gitlab
            .as_ref()
            .map(|g| to_json(&g.variables))
            .transpose()?;
        let row = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let existed = sqlx::query("SELECT 1 FROM webhooks WHERE name = ?")
                    .bind(&row.name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                let gitlab = row.gitlab.as_ref();
                let disabled = row.disabled.as_ref();
                sqlx::query(
                    "INSERT INTO webhooks (name, origin, kind, url, events, repositories, secret, \
                     allow_private, gitlab_project, gitlab_token, gitlab_ref, gitlab_variables, \
                     disabled_reason, disabled_at_ms, created_at_ms, updated_at_ms) \
                     VALUES (?, ?, ?, ?, json(?), json(?), ?, ?, ?, ?, ?, json(?), ?, ?, ?, ?) \
                     ON CONFLICT (name) DO UPDATE SET origin = excluded.origin, \
                     kind = excluded.kind, url = excluded.url, events = excluded.events, \
                     repositories = excluded.repositories, secret = excluded.secret, \
                     allow_private = excluded.allow_private, \
                     gitlab_project = excluded.gitlab_project, \
                     gitlab_token = excluded.gitlab_token, gitlab_ref = excluded.gitlab_ref, \
                     gitlab_variables = excluded.gitlab_variables, \
                     disabled_reason = excluded.disabled_reason, \
                     disabled_at_ms = excluded.disabled_at_ms, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(&row.name)
                .bind(row.origin.as_str())
                .bind(row.kind.as_str())
                .bind(&row.url)
                .bind(&events)
                .bind(&repositories)
                .bind(&row.secret)
                .bind(row.allow_private)
                .bind(gitlab.map(|g| &g.project))
                .bind(gitlab.map(|g| &g.token))
                .bind(gitlab.map(|g| &g.git_ref))
                .bind(&variables)
                .bind(disabled.map(|d| &d.reason))
                .bind(disabled.map(|d| d.at_ms))
                .bind(row.created_at_ms)
                .bind(row.updated_at_ms)
                .execute(&mut *conn)
                .await?;
                Ok(!existed)
            })
        })
        .await
    }

    async fn webhook(&self, name: &str) -> Result<Option<WebhookRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks ORDER BY name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(webhook_row).collect()
    }

    async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM webhooks WHERE name = ?")
                    .bind(&name)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn prune_webhooks(
        &self,
        origin: WebhookOrigin,
        keep: &[String],
    ) -> Result<(), StoreError> {
        let keep = to_json(&keep)?;
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM webhooks WHERE origin = ? \
                     AND name NOT IN (SELECT value FROM json_each(?))",
                )
                .bind(origin.as_str())
                .bind(&keep)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn create_deliveries(
        &self,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                let mut created = 0;
                for d in &deliveries {
                    let done = sqlx::query(
                        "INSERT INTO webhook_deliveries (id, webhook, event_id, event_type, body, \
                         state, next_attempt_at_ms, created_at_ms, updated_at_ms) \
                         SELECT lower(hex(randomblob(16))), ?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5 \
                         WHERE EXISTS (SELECT 1 FROM webhooks WHERE name = ?1) \
                         ON CONFLICT (webhook, event_id) DO NOTHING",
                    )
                    .bind(&d.webhook)
                    .bind(&d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.body)
                    .bind(now_ms)
                    .execute(&mut *conn)
                    .await?;
                    created += done.rows_affected();
                }
                Ok(created)
            })
        })
        .await
    }

    async fn create_claimed_delivery(
        &self,
        delivery: &NewDelivery,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let d = delivery.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(concat!(
                    "INSERT INTO webhook_deliveries (id, webhook, event_id, event_type, body, \
                     state, next_attempt_at_ms, claim, lease_until_ms, created_at_ms, updated_at_ms) \
                     SELECT lower(hex(randomblob(16))), ?1, ?2, ?3, ?4, 'pending', ?5, \
                     lower(hex(randomblob(16))), ?5 + ?6, ?5, ?5 \
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE name = ?1) \
                     ON CONFLICT (webhook, event_id) DO NOTHING RETURNING ",
                    delivery_columns!(),
                    ", body, claim"
                ))
                .bind(&d.webhook)
                .bind(&d.event_id)
                .bind(&d.event_type)
                .bind(&d.body)
                .bind(now_ms)
                .bind(lease_ms)
                .fetch_optional(&mut *conn)
                .await?;
                row.as_ref().map(claimed_row).transpose()
            })
        })
        .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn delivery_for_event(
        &self,
        webhook: &str,
        event_id: &str,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook = ? AND event_id = ?"
        ))
        .bind(webhook)
        .bind(event_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn delivery_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT body FROM webhook_deliveries WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn deliveries(
        &self,
        webhook: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = match before {
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM webhook_deliveries WHERE webhook = ? ORDER BY seq DESC LIMIT ?"
                ))
                .bind(webhook)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
            }
            // An unknown `before` compares with NULL: no rows, rather than the first page again.
            Some(before) => {
                sqlx::query(concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM webhook_deliveries WHERE webhook = ?1 AND seq < \
                     (SELECT seq FROM webhook_deliveries WHERE id = ?2 AND webhook = ?1) \
                     ORDER BY seq DESC LIMIT ?3"
                ))
                .bind(webhook)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?
            }
        };
        rows.iter().map(delivery_row).collect()
    }

    async fn attempts(&self, delivery: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery, number, status, error, duration_ms, response, attempted_at_ms \
             FROM webhook_attempts WHERE delivery = ? ORDER BY number",
        )
        .bind(delivery)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(attempt_row).collect()
    }

    async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let rows = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET claim = lower(hex(randomblob(16))), \
                     lease_until_ms = ?1 + ?2 WHERE id IN (\
                     SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.name = d.webhook \
                     WHERE d.state = 'pending' AND d.next_attempt_at_ms <= ?1 \
                     AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= ?1) \
                     AND w.disabled_at_ms IS NULL \
                     ORDER BY d.next_attempt_at_ms, d.seq LIMIT ?3) RETURNING ",
                    delivery_columns!(),
                    ", body, claim"
                ))
                .bind(now_ms)
                .bind(lease_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(claimed_row).collect()
            })
        })
        .await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET claim = lower(hex(randomblob(16))), \
                     lease_until_ms = ?2 + ?3 WHERE id = ?1 \
                     AND (lease_until_ms IS NULL OR lease_until_ms <= ?2) RETURNING ",
                    delivery_columns!(),
                    ", body, claim"
                ))
                .bind(&id)
                .bind(now_ms)
                .bind(lease_ms)
                .fetch_optional(&mut *conn)
                .await?;
                row.as_ref().map(claimed_row).transpose()
            })
        })
        .await
    }

    async fn finish_attempt(
        &self,
        result: &FinishedAttempt,
    ) -> Result<AttemptRecorded, StoreError> {
        let result = result.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let webhook: Option<String> =
                    sqlx::query_scalar("SELECT webhook FROM webhook_deliveries WHERE id = ?")
                        .bind(&result.delivery)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(webhook) = webhook else {
                    // Deleted with its webhook while the attempt ran: nothing to record.
                    return Ok(AttemptRecorded {
                        number: 0,
                        applied: false,
                    });
                };
                let attempt = &result.attempt;
                let response = attempt
                    .response
                    .get(..MAX_RESPONSE_EXCERPT)
                    .unwrap_or(&attempt.response);
                let number: i64 = sqlx::query_scalar(
                    "INSERT INTO webhook_attempts (delivery, number, status, error, duration_ms, \
                     response, attempted_at_ms) \
                     SELECT ?1, coalesce(max(number), 0) + 1, ?2, ?3, ?4, ?5, ?6 \
                     FROM webhook_attempts WHERE delivery = ?1 RETURNING number",
                )
                .bind(&result.delivery)
                .bind(attempt.status)
                .bind(&attempt.error)
                .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
                .bind(response)
                .bind(attempt.attempted_at_ms)
                .fetch_one(&mut *conn)
                .await?;
                sqlx::query("UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE id = ?")
                    .bind(&result.delivery)
                    .execute(&mut *conn)
                    .await?;
                let applied = apply_after_attempt(conn, &result, &webhook).await?;
                if let Some(breaker) = &result.breaker {
                    save_breaker_in(conn, &webhook, breaker, result.now_ms).await?;
                }
                Ok(AttemptRecorded {
                    number: u32::try_from(number)
                        .map_err(|_| corrupt(format!("attempt number {number}")))?,
                    applied,
                })
            })
        })
        .await
    }

    async fn postpone_delivery(
        &self,
        id: &str,
        claim: &str,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (id, claim) = (id.to_owned(), claim.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE webhook_deliveries SET next_attempt_at_ms = ?, claim = NULL, \
                     lease_until_ms = NULL, updated_at_ms = ? \
                     WHERE id = ? AND claim = ? AND state = 'pending'",
                )
                .bind(at_ms)
                .bind(now_ms)
                .bind(&id)
                .bind(&claim)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<DeliveryRow>, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at_ms = ?1, \
                     round_attempts = 0, claim = NULL, lease_until_ms = NULL, updated_at_ms = ?1 \
                     WHERE id = ?2 RETURNING ",
                    delivery_columns!()
                ))
                .bind(now_ms)
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await?;
                row.as_ref().map(delivery_row).transpose()
            })
        })
        .await
    }

    async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(max(d.next_attempt_at_ms, coalesce(d.lease_until_ms, 0))) \
             FROM webhook_deliveries d JOIN webhooks w ON w.name = d.webhook \
             WHERE d.state = 'pending' AND w.disabled_at_ms IS NULL",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE state != 'pending' AND updated_at_ms < ?",
                )
                .bind(before_ms)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn save_breaker(
        &self,
        webhook: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (webhook, state) = (webhook.to_owned(), state.to_owned());
        self.write(move |conn| {
            Box::pin(async move { save_breaker_in(conn, &webhook, &state, now_ms).await })
        })
        .await
    }

    async fn breakers(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT webhook, state FROM webhook_breakers")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("webhook")?, row.try_get("state")?)))
            .collect()
    }
}
