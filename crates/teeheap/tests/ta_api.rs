//! The GP TEE Internal Core API of host-built TAs (issue 13), under
//! `teeheap run` through the UAPI, with C test TAs built with the README's
//! line. `tests/tas/crypto` checks published test vectors (NIST SP 800-38A
//! ECB/CBC/CTR, GCM test case 4, SHA-256 "abc", RFC 4231 HMAC-SHA256) and
//! breaks GP rules in sessions of their own, each of which must end with
//! `TARGET_DEAD` while the first session carries on. `tests/tas/props`
//! reads its header's properties (standard and
//! `TA_CURRENT_TA_EXT_PROPERTIES`), the TEE's and its client's.

mod common;

use common::{assert_all_ok, build_ta, compile, repo, teeheap_private, tmp};

const CRYPTO_UUID: &str = "8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02";
const PROPS_UUID: &str = "8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c03";

#[test]
fn crypto_ta_meets_the_published_vectors_and_panics_on_misuse() {
    let tadir = tmp().join("ta-crypto");
    build_ta(&repo().join("crates/teeheap/tests/tas/crypto"), &tadir, CRYPTO_UUID);
    let client = compile("ta_api_client.c", "ta_api_client_crypto", &[]);
    let out = teeheap_private("ta-crypto")
        .arg("run")
        .arg("--ta-dir")
        .arg(&tadir)
        .arg("--")
        .arg(&client)
        .arg("crypto")
        .output()
        .unwrap();
    assert_all_ok(
        &out,
        &[
            "open session with the crypto TA",
            "AES-128-ECB: NIST SP 800-38A F.1.1/F.1.2",
            "AES-128-CBC: NIST SP 800-38A F.2.1/F.2.2",
            "AES-128-CTR: NIST SP 800-38A F.5.1/F.5.2",
            "AES-GCM: GCM spec test case 4, wrong tag refused",
            "SHA-256: abc",
            "HMAC-SHA256: RFC 4231 test cases 2 and 4",
            "TEE_GenerateKey: AES-256 and HMAC keys",
            "SHORT_BUFFER writes the size needed back",
            "TEE_GetOperationInfo and TEE_IsAlgorithmSupported",
            "CipherUpdate before CipherInit panics",
            "a made-up operation handle panics",
            "DigestUpdate on a cipher panics",
            "an HMAC key on an AES operation panics",
            "AEUpdateAAD after AEUpdate panics",
            "a freed object panics",
            "the first session carries on after the panics",
        ],
    );
}

#[test]
fn property_ta_reads_its_header_the_tee_and_its_client() {
    let tadir = tmp().join("ta-props");
    build_ta(&repo().join("crates/teeheap/tests/tas/props"), &tadir, PROPS_UUID);
    build_ta(&repo().join("crates/teeheap/tests/tas/crypto"), &tadir, CRYPTO_UUID);
    let client = compile("ta_api_client.c", "ta_api_client_props", &[]);
    let out = teeheap_private("ta-props")
        .arg("run")
        .arg("--ta-dir")
        .arg(&tadir)
        .arg("--")
        .arg(&client)
        .arg("props")
        .output()
        .unwrap();
    assert_all_ok(
        &out,
        &[
            "open session with the property TA",
            "TA, client and TEE properties through every getter and enumerators",
            "gpd.client.identity of a normal-world client: public login",
            "gpd.client.identity of a TA client: TRUSTED_APP and its UUID",
            "a made-up property set handle panics",
        ],
    );
}

/// Every function the dev kit's headers declare is exported by the
/// `teeheap` binary (a TA that calls one must load: `RTLD_NOW`).
#[test]
fn every_declared_api_function_is_exported() {
    let out = std::process::Command::new("nm").args(["-D", "--defined-only"]).arg(common::TEEHEAP).output();
    let out = out.expect("nm (binutils)");
    let symbols = String::from_utf8_lossy(&out.stdout);
    let exported: std::collections::BTreeSet<&str> =
        symbols.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    let mut declared = Vec::new();
    for (path, text) in teeheap_ta_host::devkit::FILES {
        if !path.ends_with(".h") {
            continue;
        }
        for line in text.lines() {
            // A prototype: "TYPE NAME(ARGS" with NAME a GP function.
            let Some(open) = line.find('(') else { continue };
            let Some(name) = line[..open].split_whitespace().last().map(|n| n.trim_start_matches('*')) else {
                continue;
            };
            if name.starts_with("TEE_") && !line.trim_start().starts_with('#') && !line.contains("define") {
                declared.push(name.to_owned());
            }
        }
    }
    for known in ["TEE_Malloc", "TEE_CipherDoFinal", "TEE_AEDecryptFinal", "TEE_GetPropertyAsU32", "TEE_CacheFlush"] {
        assert!(declared.iter().any(|d| d == known), "the header scan misses {known}: {declared:?}");
    }
    let missing: Vec<&String> = declared.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "declared but not exported: {missing:?}");
}
