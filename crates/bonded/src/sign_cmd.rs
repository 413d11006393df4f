//! `bonded key generate`, `sign`, `verify`, `attest` and `verify-attestation`: cosign-format
//! signing from the command line, against any OCI registry. Arguments, passwords, output and
//! exit codes live here; the formats and verification are the `trust` crate's, the HTTP the
//! `client` crate's.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use client::{Credentials, ImageReference, RegistryClient};
use oci::{Digest, Manifest, ManifestKind, MediaType, Reference, RepositoryName};
use serde_json::Value;
use trust::attach::{self, Repository, Verdict};
use trust::keys::{KeyAlgorithm, PublicKey, SigningKey};
use zeroize::Zeroizing;

/// Largest predicate file `bonded attest` reads.
const MAX_PREDICATE_BYTES: u64 = 16 << 20;
/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new key pair: PREFIX.key (encrypted, cosign's format) and PREFIX.pub.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, default_value = "cosign")]
    pub output_key_prefix: PathBuf,
    /// `ecdsa-p256` (cosign's default) or `ed25519`.
    #[arg(long, default_value = "ecdsa-p256")]
    pub algorithm: KeyAlgorithm,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the key's password from FILE (else `BONDED_PASSWORD`, else a prompt on a terminal).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (for registries without TLS).
    #[arg(long)]
    pub plain_http: bool,
    /// User name for the registry; the password comes from `BONDED_REGISTRY_PASSWORD`.
    #[arg(long, env = "BONDED_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The private key (cosign's encrypted format, or a PKCS#8/SEC1 PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// `key=value` added to the payload's `optional` section (repeatable).
    #[arg(short = 'a', long = "annotation")]
    pub annotations: Vec<String>,
    /// For an index: also sign every manifest it lists.
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// `[docker://]HOST/REPO[:TAG|@DIGEST]`.
    pub image: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The public key (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// Accept payloads that name another repository.
    #[arg(long)]
    pub ignore_reference: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    #[arg(long)]
    pub key: PathBuf,
    /// The predicate: a JSON file.
    #[arg(long)]
    pub predicate: PathBuf,
    /// `slsaprovenance`, `slsaprovenance1`, `cyclonedx`, `spdx`, `spdxjson`, `vuln`, `link`,
    /// `custom`, or a predicate type URI.
    #[arg(long = "type", default_value = "custom")]
    pub predicate_type: String,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct VerifyAttestationArgs {
    #[arg(long)]
    pub key: PathBuf,
    /// Only attestations of this predicate type (alias or URI).
    #[arg(long = "type")]
    pub predicate_type: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    pub image: String,
}

pub fn key(command: &KeyCommand) -> Result<u8> {
    let KeyCommand::Generate(args) = command;
    let password = password(&args.password, true)?;
    let key = SigningKey::generate(args.algorithm);
    let private = key
        .to_encrypted_pem(password.as_bytes())
        .map_err(|e| anyhow!("{e}"))?;
    let prefix = args.output_key_prefix.display().to_string();
    let private_path = PathBuf::from(format!("{prefix}.key"));
    let public_path = PathBuf::from(format!("{prefix}.pub"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            bail!("{} exists; refusing to overwrite it", path.display());
        }
    }
    // Both files are written whole under temporary names, then linked into place (a link
    // never replaces an existing file): an interrupted run leaves no half-written key.
    let private_tmp = PathBuf::from(format!("{prefix}.key.partial-{}", std::process::id()));
    let public_tmp = PathBuf::from(format!("{prefix}.pub.partial-{}", std::process::id()));
    let result = write_new(&private_tmp, private.as_bytes(), 0o600)
        .and_then(|()| write_new(&public_tmp, key.public_key().to_pem().as_bytes(), 0o644))
        .and_then(|()| {
            std::fs::hard_link(&public_tmp, &public_path)
                .with_context(|| format!("cannot create {}", public_path.display()))
        })
        .and_then(|()| {
            std::fs::hard_link(&private_tmp, &private_path).map_err(|e| {
                let _ = std::fs::remove_file(&public_path);
                anyhow!("cannot create {}: {e}", private_path.display())
            })
        });
    let _ = std::fs::remove_file(&private_tmp);
    let _ = std::fs::remove_file(&public_tmp);
    result?;
    eprintln!(
        "Private key written to {}\nPublic key written to {}",
        private_path.display(),
        public_path.display()
    );
    Ok(0)
}

pub fn sign(args: &SignArgs) -> Result<u8> {
    let key = load_signing_key(&args.key, &args.password)?;
    let annotations = parse_annotations(&args.annotations)?;
    let (image, repo) = connect(&args.image, &args.registry)?;
    let digest = resolve(&repo, &image)?;
    let sign_one = |target: &Digest| -> Result<()> {
        let tag = attach::sign(&repo, &key, &image.name(), target, &annotations)
            .map_err(|e| anyhow!("signing {}@{target}: {e}", image.name()))?;
        eprintln!(
            "Pushed signature of {}@{target} to {}:{tag}",
            image.name(),
            image.name()
        );
        Ok(())
    };
    // The top manifest is signed first: a registry whose pull policy wants this signature
    // serves the index only once it is there, and `--recursive` must read the index.
    sign_one(&digest)?;
    if args.recursive
        && let ManifestKind::Index { manifests } = fetch(&repo, &image, &digest)?.kind
    {
        for child in manifests {
            sign_one(&child.digest)?;
        }
    }
    Ok(0)
}

pub fn verify(args: &VerifyArgs) -> Result<u8> {
    let key = load_public_key(&args.key)?;
    let (image, repo) = connect(&args.image, &args.registry)?;
    let digest = resolve(&repo, &image)?;
    let expected_repository = (!args.ignore_reference).then(|| image.name());
    let verdicts = attach::verify(&repo, &key, &digest, expected_repository.as_deref())
        .map_err(|e| anyhow!("{e}"))?;
    report(&image, &digest, verdicts, "signature")
}

pub fn attest(args: &AttestArgs) -> Result<u8> {
    let key = load_signing_key(&args.key, &args.password)?;
    let predicate_type =
        trust::dsse::predicate_type_for(&args.predicate_type).map_err(|e| anyhow!("{e}"))?;
    let text = read_bounded(&args.predicate, MAX_PREDICATE_BYTES, "predicate")?;
    let predicate: Value = serde_json::from_slice(&text)
        .with_context(|| format!("the predicate {} is not JSON", args.predicate.display()))?;
    let (image, repo) = connect(&args.image, &args.registry)?;
    let digest = resolve(&repo, &image)?;
    let tag = attach::attest(
        &repo,
        &key,
        &image.name(),
        &digest,
        &predicate_type,
        predicate,
    )
    .map_err(|e| anyhow!("attesting {}@{digest}: {e}", image.name()))?;
    eprintln!(
        "Pushed attestation ({predicate_type}) of {}@{digest} to {}:{tag}",
        image.name(),
        image.name()
    );
    Ok(0)
}

pub fn verify_attestation(args: &VerifyAttestationArgs) -> Result<u8> {
    let key = load_public_key(&args.key)?;
    let predicate_type = args
        .predicate_type
        .as_deref()
        .map(trust::dsse::predicate_type_for)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    let (image, repo) = connect(&args.image, &args.registry)?;
    let digest = resolve(&repo, &image)?;
    let verdicts = attach::verify_attestations(&repo, &key, &digest, predicate_type.as_deref())
        .map_err(|e| anyhow!("{e}"))?;
    report(&image, &digest, verdicts, "attestation")
}

/// Prints the verified payloads as a JSON array on standard output and every refusal on
/// standard error; exit 0 when at least one verified, else 1 with the reasons.
fn report(
    image: &ImageReference,
    digest: &Digest,
    verdicts: Vec<Verdict>,
    what: &str,
) -> Result<u8> {
    let mut verified = Vec::new();
    let mut refused = Vec::new();
    for verdict in verdicts {
        match verdict.outcome {
            Ok(payload) => verified.push(payload),
            Err(reason) => refused.push(format!(
                "{} layer {}: {reason}",
                verdict.source, verdict.layer
            )),
        }
    }
    if verified.is_empty() {
        if refused.is_empty() {
            bail!("no {what}s found for {}@{digest}", image.name());
        }
        bail!(
            "no valid {what} for {}@{digest}:\n  {}",
            image.name(),
            refused.join("\n  ")
        );
    }
    for reason in &refused {
        eprintln!("ignored: {reason}");
    }
    eprintln!(
        "Verified {} {what}(s) of {}@{digest}",
        verified.len(),
        image.name()
    );
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &Value::Array(verified))?;
    writeln!(out)?;
    Ok(0)
}

/// The image's repository in its registry, through the `client` crate.
struct RemoteRepository {
    client: RegistryClient,
    repository: RepositoryName,
}

impl Repository for RemoteRepository {
    fn manifest(&self, reference: &str) -> Result<Option<attach::Document>, String> {
        let accept: Vec<&str> = MediaType::ALL.iter().map(|m| m.as_str()).collect();
        self.client
            .get_manifest(&self.repository, reference, &accept)
            .map(|m| m.map(|m| (m.bytes, m.media_type, m.digest)))
            .map_err(|e| e.to_string())
    }

    fn blob(&self, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>, String> {
        self.client
            .get_blob(&self.repository, digest, max_bytes)
            .map_err(|e| e.to_string())
    }

    fn referrers(&self, digest: &Digest) -> Result<Option<Vec<oci::Descriptor>>, String> {
        self.client
            .referrers(&self.repository, digest, None)
            .map_err(|e| e.to_string())
    }

    fn push_blob(&self, bytes: &[u8]) -> Result<Digest, String> {
        self.client
            .push_blob(&self.repository, bytes)
            .map_err(|e| e.to_string())
    }

    fn push_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, String> {
        self.client
            .put_manifest(&self.repository, reference, media_type, bytes)
            .map_err(|e| e.to_string())
    }
}

fn connect(image: &str, args: &RegistryArgs) -> Result<(ImageReference, RemoteRepository)> {
    let image = ImageReference::parse(image).map_err(|e| anyhow!("{e}"))?;
    let credentials = match &args.registry_username {
        Some(username) => Some(Credentials {
            username: username.clone(),
            password: std::env::var("BONDED_REGISTRY_PASSWORD")
                .context("--registry-username needs the password in BONDED_REGISTRY_PASSWORD")?,
        }),
        None => None,
    };
    let client = RegistryClient::new(&image.registry, args.plain_http, credentials)
        .map_err(|e| anyhow!("{e}"))?;
    let repo = RemoteRepository {
        client,
        repository: image.repository.clone(),
    };
    Ok((image, repo))
}

/// The digest the reference names: a tag is resolved with HEAD, which pull policies leave
/// open (a GET of an unsigned image may be denied, and signing must still be possible).
fn resolve(repo: &RemoteRepository, image: &ImageReference) -> Result<Digest> {
    let reference = match &image.reference {
        Reference::Tag(t) => t.to_string(),
        Reference::Digest(d) => return Ok(d.clone()),
    };
    let accept: Vec<&str> = MediaType::ALL.iter().map(|m| m.as_str()).collect();
    let head = repo
        .client
        .head_manifest(&repo.repository, &reference, &accept)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("{image}: no such manifest in the registry"))?;
    Ok(head.digest)
}

/// The manifest at `digest`, parsed.
fn fetch(repo: &RemoteRepository, image: &ImageReference, digest: &Digest) -> Result<Manifest> {
    let (bytes, media_type, _) = repo
        .manifest(&digest.to_string())
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| {
            anyhow!(
                "{}@{digest}: no such manifest in the registry",
                image.name()
            )
        })?;
    Manifest::parse(media_type.as_deref(), &bytes)
        .map_err(|e| anyhow!("{image}: the registry sent an invalid manifest: {e}"))
}

fn parse_annotations(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("annotation {pair:?} is not key=value"))
        })
        .collect()
}

/// The key password: `--password-file`, `BONDED_PASSWORD`, or a prompt on a terminal
/// (twice when `confirm`).
fn password(args: &PasswordArgs, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(path) = &args.password_file {
        let bytes = Zeroizing::new(read_bounded(path, MAX_KEY_FILE_BYTES, "password file")?);
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("the password file {} is not UTF-8", path.display()))?;
        // A trailing newline is how editors end files, never part of the password.
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        return Ok(Zeroizing::new(text.to_owned()));
    }
    if let Ok(value) = std::env::var("BONDED_PASSWORD") {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: give --password-file or BONDED_PASSWORD (standard input is not a terminal, so there is no prompt)"
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(
        "Enter password for private key: ",
    )?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password(
            "Enter password for private key again: ",
        )?);
        if first != again {
            bail!("the passwords do not match");
        }
    }
    Ok(first)
}

fn load_signing_key(path: &Path, args: &PasswordArgs) -> Result<SigningKey> {
    let pem = Zeroizing::new(read_bounded(path, MAX_KEY_FILE_BYTES, "key")?);
    let encrypted = std::str::from_utf8(&pem).is_ok_and(|t| t.contains("-----BEGIN ENCRYPTED"));
    let password = if encrypted {
        Some(password(args, false)?)
    } else {
        None
    };
    SigningKey::from_pem(&pem, password.as_ref().map(|p| p.as_bytes()))
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn load_public_key(path: &Path) -> Result<PublicKey> {
    let pem = read_bounded(path, MAX_KEY_FILE_BYTES, "public key")?;
    PublicKey::from_pem(&pem).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("the {what} {} is larger than {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// Creates `path` (never overwriting) with `mode`, writes `bytes` and syncs.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
