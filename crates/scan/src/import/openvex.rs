//! OpenVEX importer (openvex/spec `OPENVEX-SPEC.md` v0.2.0, JSON schema
//! `openvex_json_schema.json`): every statement of a document becomes [`VexStatement`]s.
//!
//! - The document's `author` and `timestamp` are copied to each statement; a statement's own
//!   `timestamp` overrides the document's ("Statement … timestamp: … if not set, the
//!   statement inherits the document's timestamp"). `document` is the document `@id`, or the
//!   file path when the document has none.
//! - The vulnerability is `vulnerability.name` (or its `@id` when the name is missing); its
//!   `aliases` are kept as published.
//! - Products are identified by `identifiers.purl` when present, else by `@id` (an IRI that is
//!   usually a purl). [`VexStatement`] holds one subcomponent list for all its products, while
//!   OpenVEX gives each product its own, so products are grouped by identical subcomponent
//!   lists and each group becomes one [`VexStatement`]; the scope is preserved exactly.
//! - Status `not_affected`, `affected`, `fixed` or `under_investigation`; justification,
//!   impact and action statements are copied.
//! - The pre-0.2 form (context `https://openvex.dev/ns` or `…/v0.0.x`) is accepted too: a
//!   `vulnerability` given as a bare string, products as bare strings, and `subcomponents` at
//!   the statement level, applying to every product.
//!
//! A statement that cannot be used (no vulnerability, no product, unknown status, wrong
//! shape) is skipped with its reason; a file that is not JSON or not OpenVEX is an error.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{
    ImportError, ImportStats, MAX_DOCUMENT_BYTES, Record, Sink, emit, json_error, read_capped,
};
use crate::advisory::{VexStatement, VexStatus};

/// Every OpenVEX context IRI starts with this.
const CONTEXT_PREFIX: &str = "https://openvex.dev/ns";

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id", default)]
    id: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    /// Decoded one by one so that a malformed statement is skipped, not fatal.
    #[serde(default)]
    statements: Vec<Value>,
}

#[derive(Deserialize)]
struct Statement {
    vulnerability: VulnerabilityRef,
    #[serde(default)]
    products: Vec<ProductRef>,
    /// Statement-level subcomponents of the pre-0.2 form.
    #[serde(default)]
    subcomponents: Vec<ProductRef>,
    status: String,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    impact_statement: Option<String>,
    #[serde(default)]
    action_statement: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VulnerabilityRef {
    Name(String),
    Object {
        #[serde(default)]
        name: Option<String>,
        #[serde(rename = "@id", default)]
        id: Option<String>,
        #[serde(default)]
        aliases: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ProductRef {
    Id(String),
    Object(Product),
}

#[derive(Deserialize)]
struct Product {
    #[serde(rename = "@id", default)]
    id: Option<String>,
    #[serde(default)]
    identifiers: Option<Identifiers>,
    #[serde(default)]
    subcomponents: Vec<ProductRef>,
}

#[derive(Deserialize)]
struct Identifiers {
    #[serde(default)]
    purl: Option<String>,
}

impl ProductRef {
    /// The product's purl, else its `@id`.
    fn identifier(&self) -> Option<String> {
        let id = match self {
            ProductRef::Id(id) => Some(id.as_str()),
            ProductRef::Object(p) => p
                .identifiers
                .as_ref()
                .and_then(|i| i.purl.as_deref())
                .or(p.id.as_deref()),
        }?;
        Some(id.trim().to_owned()).filter(|id| !id.is_empty())
    }

    fn subcomponents(&self) -> &[ProductRef] {
        match self {
            ProductRef::Id(_) => &[],
            ProductRef::Object(p) => &p.subcomponents,
        }
    }
}

/// What the document says about every statement.
struct DocumentContext {
    document: String,
    author: Option<String>,
    timestamp: Option<String>,
}

pub(super) fn import_document(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let bytes = read_capped(path, MAX_DOCUMENT_BYTES)?;
    import_bytes(path, &bytes, sink, stats)
}

/// Imports one OpenVEX document already in memory; `path` names it in messages.
pub(crate) fn import_bytes(
    path: &Path,
    bytes: &[u8],
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ImportError::Malformed {
            path: path.to_owned(),
            reason: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
        });
    }
    let document: Document =
        serde_json::from_slice(super::strip_bom(bytes)).map_err(|e| json_error(path, &e))?;
    if !document.context.starts_with(CONTEXT_PREFIX) {
        return Err(ImportError::Malformed {
            path: path.to_owned(),
            reason: format!("@context {:?} is not OpenVEX", document.context),
        });
    }
    let context = DocumentContext {
        document: document
            .id
            .clone()
            .unwrap_or_else(|| path.display().to_string()),
        author: document.author,
        timestamp: document.timestamp,
    };
    for (index, statement) in document.statements.into_iter().enumerate() {
        let location = format!("{} statement #{index}", context.document);
        let statement = match serde_json::from_value::<Statement>(statement) {
            Ok(statement) => statement,
            Err(e) => {
                stats.skip(location, e.to_string());
                continue;
            }
        };
        match convert(statement, &context) {
            Ok(records) => {
                for record in records {
                    emit(sink, stats, Record::Vex(record))?;
                }
            }
            Err(reason) => stats.skip(location, reason),
        }
    }
    Ok(())
}

fn convert(statement: Statement, context: &DocumentContext) -> Result<Vec<VexStatement>, String> {
    let (vulnerability, aliases) = match statement.vulnerability {
        VulnerabilityRef::Name(name) => (Some(name), Vec::new()),
        VulnerabilityRef::Object { name, id, aliases } => (name.or(id), aliases),
    };
    let vulnerability = vulnerability
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or("no vulnerability name")?;
    let status = match statement.status.as_str() {
        "not_affected" => VexStatus::NotAffected,
        "affected" => VexStatus::Affected,
        "fixed" => VexStatus::Fixed,
        "under_investigation" => VexStatus::UnderInvestigation,
        other => return Err(format!("unknown status {other:?}")),
    };
    let shared: Vec<String> = statement
        .subcomponents
        .iter()
        .filter_map(ProductRef::identifier)
        .collect();
    let groups = group_products(&statement.products, &shared);
    if groups.is_empty() {
        return Err("no product with an identifier".to_owned());
    }
    Ok(groups
        .into_iter()
        .map(|(subcomponents, products)| VexStatement {
            vulnerability: vulnerability.clone(),
            aliases: aliases.clone(),
            products,
            subcomponents,
            status,
            justification: statement.justification.clone(),
            impact_statement: statement.impact_statement.clone(),
            action_statement: statement.action_statement.clone(),
            author: context.author.clone(),
            timestamp: statement
                .timestamp
                .clone()
                .or_else(|| context.timestamp.clone()),
            document: context.document.clone(),
        })
        .collect())
}

/// Groups product identifiers by their subcomponent list, in order of first appearance.
fn group_products(products: &[ProductRef], shared: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for product in products {
        let Some(id) = product.identifier() else {
            continue;
        };
        let mut subcomponents: Vec<String> = product
            .subcomponents()
            .iter()
            .filter_map(ProductRef::identifier)
            .collect();
        subcomponents.extend(shared.iter().cloned());
        match index.get(&subcomponents).and_then(|&i| groups.get_mut(i)) {
            Some((_, ids)) => ids.push(id),
            None => {
                index.insert(subcomponents.clone(), groups.len());
                groups.push((subcomponents, vec![id]));
            }
        }
    }
    groups
}
