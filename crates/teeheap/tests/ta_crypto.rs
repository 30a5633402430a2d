//! The GP cryptographic operations of host-built TAs (issue 13): the C
//! test TA in `tests/tas/crypto`, built with the README's line, checks
//! published test vectors (NIST SP 800-38A ECB/CBC/CTR, GCM test case 4,
//! SHA-256 "abc", RFC 4231 HMAC-SHA256) through the API, and breaks GP
//! rules in sessions of their own, each of which must end with
//! `TARGET_DEAD` while the first session carries on; all under
//! `teeheap run` through the UAPI.

mod common;

use common::{assert_all_ok, build_ta, compile, repo, teeheap_private, tmp};

const CRYPTO_UUID: &str = "8aa2f1e3-4b2c-4f0e-9d51-6c7e2b0a9c02";

#[test]
fn crypto_ta_meets_the_published_vectors_and_panics_on_misuse() {
    let tadir = tmp().join("ta-crypto");
    build_ta(&repo().join("crates/teeheap/tests/tas/crypto"), &tadir, CRYPTO_UUID);
    let client = compile("ta_crypto_client.c", "ta_crypto_client", &[]);
    let out =
        teeheap_private("ta-crypto").arg("run").arg("--ta-dir").arg(&tadir).arg("--").arg(&client).output().unwrap();
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
