//! `bonded policy test`: what the promotion rules of a configuration file would decide about
//! one image, and why, without changing anything. The evidence comes from a saved evidence
//! document (`--evidence FILE`, the JSON `GET …/manifests/<digest>/evidence` returns: fully
//! offline) or from the Bonded registry the image names.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use client::{ImageReference, RegistryClient};
use oci::Reference;
use policy::cel::Evidence;
use policy::promotion::{Outcome, PromotionRule};
use serde_json::json;

use crate::config::Config;

/// Largest evidence document read.
const MAX_EVIDENCE_BYTES: u64 = 64 << 20;

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Decide an image against the promotion rules of a configuration file (a dry run).
    Test(TestArgs),
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The configuration file whose `[[promotion]]` rules are tested.
    #[arg(long)]
    config: PathBuf,
    /// The image, `[HOST/]REPOSITORY[:TAG|@DIGEST]`; its repository and tag choose the rules.
    image: String,
    /// A saved evidence document; without it the evidence is read from the registry.
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Talk HTTP to the registry.
    #[arg(long)]
    plain_http: bool,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    format: String,
    /// Exit with this code when a rule rejects the image.
    #[arg(long, default_value_t = 0)]
    exit_code: u8,
}

pub fn run(command: &PolicyCommand) -> Result<u8> {
    match command {
        PolicyCommand::Test(args) => test(args),
    }
}

fn test(args: &TestArgs) -> Result<u8> {
    if !matches!(args.format.as_str(), "text" | "json") {
        bail!("--format must be text or json, not {:?}", args.format);
    }
    let config = Config::from_file(&args.config)?;
    let rules = config
        .promotion
        .into_iter()
        .map(PromotionRule::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    let image = ImageReference::parse(&args.image).map_err(|e| anyhow!("{e}"))?;
    let tag = match &image.reference {
        Reference::Tag(t) => Some(t.to_string()),
        Reference::Digest(_) => None,
    };
    let mut evidence = match &args.evidence {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read evidence {}", path.display()))?;
            serde_json::from_slice::<Evidence>(&bytes)
                .with_context(|| format!("invalid evidence document {}", path.display()))?
        }
        None => fetch_evidence(&image, args.plain_http)?,
    };
    evidence.image.repository = image.repository.to_string();
    evidence.image.tag = tag.clone();
    let now = SystemTime::now();
    let mut results = Vec::new();
    let mut rejected = false;
    for rule in &rules {
        let matched = tag
            .as_deref()
            .and_then(|t| rule.matches(image.repository.as_str(), t));
        let Some(matched) = matched else {
            results.push(json!({"rule": rule.name(), "verdict": "not_considered",
                "reasons": ["the image's repository or tag does not match the rule (a pull by digest has no tag)"]}));
            continue;
        };
        let mut decision = rule.decide(&evidence, now);
        match rule.target(
            image.repository.as_str(),
            tag.as_deref().unwrap_or(""),
            &matched,
            now,
        ) {
            Ok(target) => decision.target = Some(target),
            Err(e) => {
                decision.verdict = Outcome::Rejected;
                decision.reasons.push(e.to_string());
            }
        }
        rejected |= decision.verdict == Outcome::Rejected;
        results.push(decision.to_json());
    }
    if args.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "image": args.image, "decisions": results }))?
        );
    } else {
        if results.is_empty() {
            println!("no [[promotion]] rules in {}", args.config.display());
        }
        for r in &results {
            let verdict = r["verdict"].as_str().unwrap_or("?");
            let target = match (&r["target"]["repository"], &r["target"]["tag"]) {
                (serde_json::Value::String(repo), serde_json::Value::String(tag))
                    if verdict == "promoted" =>
                {
                    format!(" -> {repo}:{tag}")
                }
                _ => String::new(),
            };
            println!("{}: {verdict}{target}", r["rule"].as_str().unwrap_or("?"));
            for reason in r["reasons"].as_array().into_iter().flatten() {
                println!("  {}", reason.as_str().unwrap_or_default());
            }
        }
    }
    Ok(if rejected { args.exit_code } else { 0 })
}

/// The evidence a Bonded registry holds for the image.
fn fetch_evidence(image: &ImageReference, plain_http: bool) -> Result<Evidence> {
    let client =
        RegistryClient::new(&image.registry, plain_http, None).map_err(|e| anyhow!("{e}"))?;
    let digest = match &image.reference {
        Reference::Digest(d) => d.clone(),
        Reference::Tag(t) => {
            client
                .head_manifest(&image.repository, t.as_str(), &[])
                .map_err(|e| anyhow!("{e}"))?
                .ok_or_else(|| anyhow!("{} has no tag {t}", image.repository))?
                .digest
        }
    };
    let path = format!(
        "api/v1/repositories/{}/manifests/{digest}/evidence",
        image.repository
    );
    let bytes = client
        .get_document(&image.repository, &path, MAX_EVIDENCE_BYTES)
        .map_err(|e| {
            anyhow!(
                "{e} (is {} a Bonded registry? else use --evidence)",
                image.registry
            )
        })?
        .ok_or_else(|| {
            anyhow!(
                "{} answered 404 for the evidence of {digest}",
                image.registry
            )
        })?;
    serde_json::from_slice(&bytes).context("the registry sent an invalid evidence document")
}
