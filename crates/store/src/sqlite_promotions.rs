//! [`PromotionStore`] on SQLite (`migrations/sqlite/0008_promotions.sql`).

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::promotions::{DecisionRow, PromotionStore, TaggedDigest};

macro_rules! decision_columns {
    () => {
        "rule, repository, tag, digest, verdict, target_repository, target_tag, decision, \
         policy_digest, decided_at, promoted_at"
    };
}

fn decision_row(row: &sqlx::sqlite::SqliteRow) -> Result<DecisionRow, StoreError> {
    Ok(DecisionRow {
        rule: row.try_get("rule")?,
        repository: row.try_get("repository")?,
        tag: row.try_get("tag")?,
        digest: row.try_get("digest")?,
        verdict: row.try_get("verdict")?,
        target_repository: row.try_get("target_repository")?,
        target_tag: row.try_get("target_tag")?,
        decision: row.try_get("decision")?,
        policy_digest: row.try_get("policy_digest")?,
        decided_at: row.try_get("decided_at")?,
        promoted_at: row.try_get("promoted_at")?,
    })
}

#[async_trait]
impl PromotionStore for SqliteMetaStore {
    async fn put_promotion_rule(
        &self,
        name: &str,
        definition: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (name, definition) = (name.to_owned(), definition.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let existed: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM promotion_rules WHERE name = ?")
                        .bind(&name)
                        .fetch_optional(&mut *conn)
                        .await?;
                sqlx::query(
                    "INSERT INTO promotion_rules (name, definition, updated_at) VALUES (?, ?, ?) \
                     ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, \
                     updated_at = excluded.updated_at",
                )
                .bind(&name)
                .bind(&definition)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(existed.is_none())
            })
        })
        .await
    }

    async fn delete_promotion_rule(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM promotion_rules WHERE name = ?")
                    .bind(&name)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn promotion_rules(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, definition FROM promotion_rules ORDER BY name")
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn record_decision(&self, row: &DecisionRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let before: Option<String> = sqlx::query_scalar(
                    "SELECT verdict FROM promotion_decisions \
                     WHERE rule = ? AND repository = ? AND tag = ? AND digest = ?",
                )
                .bind(&row.rule)
                .bind(&row.repository)
                .bind(&row.tag)
                .bind(&row.digest)
                .fetch_optional(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO promotion_decisions (rule, repository, tag, digest, verdict, \
                     target_repository, target_tag, decision, policy_digest, decided_at, promoted_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, json(?), ?, ?, ?) \
                     ON CONFLICT (rule, repository, tag, digest) DO UPDATE SET \
                     verdict = excluded.verdict, target_repository = excluded.target_repository, \
                     target_tag = excluded.target_tag, decision = excluded.decision, \
                     policy_digest = excluded.policy_digest, decided_at = excluded.decided_at, \
                     promoted_at = coalesce(promotion_decisions.promoted_at, excluded.promoted_at)",
                )
                .bind(&row.rule)
                .bind(&row.repository)
                .bind(&row.tag)
                .bind(&row.digest)
                .bind(&row.verdict)
                .bind(&row.target_repository)
                .bind(&row.target_tag)
                .bind(&row.decision)
                .bind(&row.policy_digest)
                .bind(row.decided_at)
                .bind(row.promoted_at)
                .execute(&mut *conn)
                .await?;
                Ok(before.as_deref() != Some(row.verdict.as_str()))
            })
        })
        .await
    }

    async fn decision(
        &self,
        rule: &str,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Result<Option<DecisionRow>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            decision_columns!(),
            " FROM promotion_decisions WHERE rule = ? AND repository = ? AND tag = ? AND digest = ?"
        ))
        .bind(rule)
        .bind(repository)
        .bind(tag)
        .bind(digest)
        .fetch_optional(&self.read)
        .await?
        .as_ref()
        .map(decision_row)
        .transpose()
    }

    async fn promoted_at(&self, rule: &str, digest: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(promoted_at) FROM promotion_decisions WHERE rule = ? AND digest = ?",
        )
        .bind(rule)
        .bind(digest)
        .fetch_one(&self.read)
        .await?)
    }

    async fn decisions_for_digest(&self, digest: &str) -> Result<Vec<DecisionRow>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            decision_columns!(),
            " FROM promotion_decisions WHERE digest = ? ORDER BY rule, repository, tag"
        ))
        .bind(digest)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(decision_row)
        .collect()
    }

    async fn decisions_for_rule(
        &self,
        rule: &str,
        limit: u32,
    ) -> Result<Vec<DecisionRow>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            decision_columns!(),
            " FROM promotion_decisions WHERE rule = ? ORDER BY decided_at DESC, repository, tag LIMIT ?"
        ))
        .bind(rule)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(decision_row)
        .collect()
    }

    async fn lock_tag(
        &self,
        repository: &str,
        tag: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (repository, tag, reason) = (repository.to_owned(), tag.to_owned(), reason.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO tag_locks (repository, tag, reason, created_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&repository)
                .bind(&tag)
                .bind(&reason)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn tag_lock(&self, repository: &str, tag: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT reason FROM tag_locks WHERE repository = ? AND tag = ?")
                .bind(repository)
                .bind(tag)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn tags_for_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM tags WHERE repository = ? AND manifest_digest = ? ORDER BY name",
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(&self.read)
        .await?)
    }

    async fn all_tags(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<TaggedDigest>, StoreError> {
        let (repo, tag) = after.unwrap_or(("", ""));
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT repository, name, manifest_digest FROM tags \
             WHERE (repository, name) > (?, ?) ORDER BY repository, name LIMIT ?",
        )
        .bind(repo)
        .bind(tag)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(repository, tag, digest)| TaggedDigest {
                repository,
                tag,
                digest,
            })
            .collect())
    }
}
