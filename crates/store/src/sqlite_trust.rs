//! [`TrustStore`] on SQLite: the same writer task and read pool as the rest of the metadata.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::trust::{
    AttachmentCandidate, AttachmentKind, AttachmentRecord, AttachmentVia, AuthorityOrigin,
    AuthorityRow, Signers, TrustStore,
};

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn authority_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuthorityRow, StoreError> {
    let name: String = row.try_get("name")?;
    let keys: String = row.try_get("keys")?;
    let origin: String = row.try_get("origin")?;
    Ok(AuthorityRow {
        keys: serde_json::from_str(&keys)
            .map_err(|e| corrupt(format!("keys of authority {name:?}: {e}")))?,
        origin: AuthorityOrigin::parse(&origin)
            .ok_or_else(|| corrupt(format!("origin {origin:?} of authority {name:?}")))?,
        updated_at: row.try_get("updated_at")?,
        name,
    })
}

/// The SQL expression of cosign's tag for a subject digest and an attachment kind:
/// `sha256:<hex>` and `signature` give `sha256-<hex>.sig`.
macro_rules! attachment_tag {
    ($subject:literal, $kind:literal) => {
        concat!(
            "('sha256-' || substr(",
            $subject,
            ", 8) || CASE ",
            $kind,
            " WHEN 'signature' THEN '.sig' ELSE '.att' END)"
        )
    };
}

#[async_trait]
impl TrustStore for SqliteMetaStore {
    async fn put_authority(&self, row: &AuthorityRow) -> Result<(), StoreError> {
        let keys = serde_json::to_string(&row.keys).map_err(|e| corrupt(e.to_string()))?;
        let row = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO trust_authorities (name, keys, origin, updated_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (name) DO UPDATE SET keys = excluded.keys, origin = excluded.origin, \
                     updated_at = excluded.updated_at",
                )
                .bind(&row.name)
                .bind(&keys)
                .bind(row.origin.as_str())
                .bind(row.updated_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn authority(&self, name: &str) -> Result<Option<AuthorityRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, keys, origin, updated_at FROM trust_authorities WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(authority_from_row).transpose()
    }

    async fn authorities(&self) -> Result<Vec<AuthorityRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, keys, origin, updated_at FROM trust_authorities ORDER BY name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(authority_from_row).collect()
    }

    async fn prune_authorities(
        &self,
        origin: AuthorityOrigin,
        keep: &[String],
    ) -> Result<(), StoreError> {
        let keep = serde_json::to_string(keep).map_err(|e| corrupt(e.to_string()))?;
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM trust_authorities WHERE origin = ? \
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

    async fn record_attachment(&self, record: &AttachmentRecord) -> Result<bool, StoreError> {
        let r = record.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM manifests WHERE repository = ? AND digest = ?",
                )
                .bind(&r.repository)
                .bind(&r.source_digest)
                .fetch_optional(&mut *conn)
                .await?;
                if exists.is_none() {
                    return Ok(false);
                }
                if r.via == AttachmentVia::Tag {
                    let tagged: Option<i64> = sqlx::query_scalar(concat!(
                        "SELECT 1 FROM tags WHERE repository = ? AND manifest_digest = ? AND name = ",
                        attachment_tag!("?", "?")
                    ))
                    .bind(&r.repository)
                    .bind(&r.source_digest)
                    .bind(&r.subject)
                    .bind(r.kind.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                    if tagged.is_none() {
                        return Ok(false);
                    }
                }
                if r.via == AttachmentVia::Tag {
                    sqlx::query(
                        "DELETE FROM attachments WHERE repository = ? AND subject = ? AND kind = ? \
                         AND via = 'tag' AND source_digest != ?",
                    )
                    .bind(&r.repository)
                    .bind(&r.subject)
                    .bind(r.kind.as_str())
                    .bind(&r.source_digest)
                    .execute(&mut *conn)
                    .await?;
                }
                sqlx::query("DELETE FROM attachments WHERE repository = ? AND source_digest = ?")
                    .bind(&r.repository)
                    .bind(&r.source_digest)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO attachments (repository, source_digest, subject, via, kind, report, verified_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&r.repository)
                .bind(&r.source_digest)
                .bind(&r.subject)
                .bind(r.via.as_str())
                .bind(r.kind.as_str())
                .bind(&r.report)
                .bind(r.verified_at)
                .execute(&mut *conn)
                .await?;
                for authority in &r.signers {
                    sqlx::query(
                        "INSERT INTO attachment_signers (repository, source_digest, subject, kind, authority) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(&r.repository)
                    .bind(&r.source_digest)
                    .bind(&r.subject)
                    .bind(r.kind.as_str())
                    .bind(authority)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(true)
            })
        })
        .await
    }

    async fn prune_stale_attachments(&self) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(concat!(
                    "DELETE FROM attachments WHERE via = 'tag' AND NOT EXISTS (SELECT 1 FROM tags t \
                     WHERE t.repository = attachments.repository AND t.manifest_digest = attachments.source_digest \
                     AND t.name = ",
                    attachment_tag!("attachments.subject", "attachments.kind"),
                    ")"
                ))
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn forget_tag_attachments(
        &self,
        repository: &str,
        subject: &str,
        kind: AttachmentKind,
    ) -> Result<(), StoreError> {
        let (repository, subject) = (repository.to_owned(), subject.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM attachments WHERE repository = ? AND subject = ? AND kind = ? AND via = 'tag'",
                )
                .bind(&repository)
                .bind(&subject)
                .bind(kind.as_str())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn attachments(
        &self,
        repository: &str,
        subject: &str,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.repository, a.source_digest, a.subject, a.via, a.kind, a.report, a.verified_at, \
             (SELECT json_group_array(s.authority) FROM attachment_signers s \
              WHERE s.repository = a.repository AND s.source_digest = a.source_digest) AS signers \
             FROM attachments a WHERE a.repository = ? AND a.subject = ? ORDER BY a.kind, a.verified_at, a.source_digest",
        )
        .bind(repository)
        .bind(subject)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let via: String = row.try_get("via")?;
                let kind: String = row.try_get("kind")?;
                let signers: String = row.try_get("signers")?;
                let signers: BTreeSet<String> = serde_json::from_str(&signers)
                    .map_err(|e| corrupt(format!("attachment signers: {e}")))?;
                Ok(AttachmentRecord {
                    repository: row.try_get("repository")?,
                    source_digest: row.try_get("source_digest")?,
                    subject: row.try_get("subject")?,
                    via: AttachmentVia::parse(&via)
                        .ok_or_else(|| corrupt(format!("attachment via {via:?}")))?,
                    kind: AttachmentKind::parse(&kind)
                        .ok_or_else(|| corrupt(format!("attachment kind {kind:?}")))?,
                    report: row.try_get("report")?,
                    signers,
                    verified_at: row.try_get("verified_at")?,
                })
            })
            .collect()
    }

    async fn signers(&self, repository: &str, digest: &str) -> Result<Signers, StoreError> {
        let rows = sqlx::query(
            "SELECT authority, 1 AS direct FROM attachment_signers \
             WHERE repository = ?1 AND subject = ?2 AND kind = 'signature' \
             UNION \
             SELECT s.authority, 0 AS direct FROM manifest_references r \
             JOIN attachment_signers s ON s.repository = r.repository AND s.subject = r.manifest_digest \
             WHERE r.repository = ?1 AND r.target_digest = ?2 AND r.kind = 'manifest' AND s.kind = 'signature'",
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(&self.read)
        .await?;
        let mut signers = Signers::default();
        for row in rows {
            let authority: String = row.try_get("authority")?;
            let direct: i64 = row.try_get("direct")?;
            if direct == 1 {
                signers.direct.insert(authority);
            } else {
                signers.via_index.insert(authority);
            }
        }
        Ok(signers)
    }

    async fn attachment_candidates(&self) -> Result<Vec<AttachmentCandidate>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.repository, m.digest, t.name AS tag, m.subject FROM manifests m \
             LEFT JOIN tags t ON t.repository = m.repository AND t.manifest_digest = m.digest \
             AND (t.name GLOB 'sha256-*.sig' OR t.name GLOB 'sha256-*.att') \
             WHERE t.name IS NOT NULL OR m.subject IS NOT NULL \
             ORDER BY m.repository, m.digest",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttachmentCandidate {
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                    tag: row.try_get("tag")?,
                    subject: row.try_get("subject")?,
                })
            })
            .collect()
    }
}
