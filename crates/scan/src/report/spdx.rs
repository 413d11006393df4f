//! SPDX 2.3 JSON (`spdx-schema.json` of the SPDX 2.3 specification): a document that
//! DESCRIBES the image package, which CONTAINS every detected package. Each package carries
//! its purl as a `PACKAGE-MANAGER` external reference. A licence is written as
//! `licenseDeclared` only when it reads as an SPDX expression; anything else is kept in
//! `licenseComments` and declared `NOASSERTION`, since SPDX forbids free text there.

use serde_json::{Value, json};

use crate::report::{Report, TOOL_NAME, TOOL_VERSION, purl};

pub fn render(report: &Report<'_>) -> Value {
    let inv = report.inventory;
    let mut image = json!({
        "SPDXID": "SPDXRef-Image",
        "name": report.image.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    if let Some(digest) = &report.image.manifest_digest {
        image["versionInfo"] = json!(digest);
        if let Some((alg, hex)) = digest.split_once(':') {
            image["checksums"] =
                json!([{"algorithm": alg.to_ascii_uppercase(), "checksumValue": hex}]);
        }
    }
    let mut packages = vec![image];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": if p.kind.is_os() { "OPERATING-SYSTEM" } else { "LIBRARY" },
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl::package_purl(p, inv.distro.as_ref()).to_string(),
            }],
        });
        let licenses: Vec<&str> = p.licenses.iter().map(String::as_str).collect();
        let joined = licenses.join(" AND ");
        if !licenses.is_empty() && licenses.iter().all(|l| is_spdx_expression(l)) {
            pkg["licenseDeclared"] = json!(joined);
        } else {
            pkg["licenseDeclared"] = json!("NOASSERTION");
            if !licenses.is_empty() {
                pkg["licenseComments"] = json!(format!(
                    "As declared by the package: {}",
                    licenses.join("; ")
                ));
            }
        }
        let layer = p
            .layer
            .and_then(|l| {
                inv.layers
                    .get(l)
                    .map(|info| format!("layer {l} ({})", info.digest))
            })
            .unwrap_or_else(|| "an unknown layer".to_owned());
        pkg["sourceInfo"] = json!(format!("found in {layer} at /{}", p.evidence));
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": report.image.name,
        "documentNamespace": format!("https://bonded.dev/spdx/{}", report.document_id),
        "creationInfo": {
            "created": report.timestamp,
            "creators": [format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        "documentDescribes": ["SPDXRef-Image"],
        "packages": packages,
        "relationships": relationships,
    })
}

/// SPDX license-expression syntax (SPDX 2.3 Annex D) without parentheses: ids and
/// `LicenseRef-` names joined by `AND`, `OR` and `WITH`.
fn is_spdx_expression(s: &str) -> bool {
    let mut expect_id = true;
    for token in s.split_whitespace() {
        if expect_id {
            let id_like = !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                && token
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic());
            if !id_like {
                return false;
            }
        } else if !matches!(token, "AND" | "OR" | "WITH") {
            return false;
        }
        expect_id = !expect_id;
    }
    !expect_id
}

#[cfg(test)]
mod tests {
    #[test]
    fn expressions() {
        assert!(super::is_spdx_expression("MIT"));
        assert!(super::is_spdx_expression("Apache-2.0 OR MIT"));
        assert!(!super::is_spdx_expression("BSD License"));
        assert!(!super::is_spdx_expression("MIT OR"));
    }
}
