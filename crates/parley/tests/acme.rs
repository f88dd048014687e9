//! One-port mode with a certificate from an ACME CA: Let's Encrypt's test
//! server Pebble (Debian package `pebble`) validates a real HTTP-01
//! challenge against `parley serve` (its names resolved by
//! `pebble-challtestsrv` to 127.0.0.1) and issues a certificate, which the
//! HTTPS listener then serves without a restart.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Process, free_udp_port, require, start_parley_logged};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The issuer of the certificate served at `addr` for `name`.
fn served_issuer(addr: &str, name: &str) -> String {
    let script = format!(
        "openssl s_client -connect {addr} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -issuer"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A test CA (the root the server is told to trust) and Pebble's own HTTPS
/// certificate signed by it.
fn pebble_tls(dir: &Path) {
    let sh = |script: String| {
        let out = Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success(), "{script}");
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(format!(
        "openssl req -x509 {ec} -days 1 -subj /CN=test-root -keyout root-key.pem -out root.pem"
    ));
    sh(format!(
        "openssl req {ec} -subj /CN=pebble.test -keyout pebble-key.pem -out pebble.csr"
    ));
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    sh("openssl x509 -req -in pebble.csr -CA root.pem -CAkey root-key.pem -CAcreateserial -days 1 -extfile leaf.ext -out pebble-cert.pem".into());
}

#[test]
fn a_certificate_from_an_acme_ca_is_obtained_and_served() {
    for tool in ["pebble", "pebble-challtestsrv", "openssl"] {
        require(tool);
    }
    let dir = std::env::temp_dir().join(format!("parley-acme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    pebble_tls(&dir);
    let (dns, challtest_admin, acme, acme_admin, http) = (
        free_udp_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    // Every name resolves to 127.0.0.1; no challenge servers of its own.
    let _dns = Process(
        Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtest_admin}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"),
        "managementListenAddress": format!("127.0.0.1:{acme_admin}"),
        "certificate": dir.join("pebble-cert.pem"),
        "privateKey": dir.join("pebble-key.pem"),
        // Pebble fetches http://parley.test:{http}/.well-known/acme-challenge/…
        "httpPort": http,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let _pebble = Process(
        Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // Validate at once, and never refuse a nonce at random.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Pebble generates its keys first; on a busy machine that takes a while.
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", acme)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pebble did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let data = dir.join("data");
    let (_server, rest, log) = start_parley_logged(
        &[
            "serve",
            "--http",
            &format!("127.0.0.1:{http}"),
            "--https",
            "127.0.0.1:0",
            "--acme-domain",
            "parley.test",
            "--acme-email",
            "admin@parley.test",
            "--acme-directory",
            &format!("https://127.0.0.1:{acme}/dir"),
            "--acme-ca-root",
            dir.join("root.pem").to_str().unwrap(),
            "--media-port",
            "0",
            "--no-turn",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        "one-port mode on ",
    );
    let https = rest.split_whitespace().next().unwrap().to_owned();
    // Until the CA answers, a self-signed stand-in is served.
    assert!(
        served_issuer(&https, "parley.test").contains("parley.test")
            || served_issuer(&https, "parley.test").contains("rcgen"),
        "{}",
        served_issuer(&https, "parley.test")
    );
    let issued = log.wait_for("certificate issued", Duration::from_secs(90));
    assert!(
        issued.is_some(),
        "no certificate:\n{}",
        log.lines().join("\n")
    );
    assert!(
        log.wait_for("loaded again", Duration::from_secs(25))
            .is_some(),
        "the HTTPS listener did not pick the certificate up:\n{}",
        log.lines().join("\n")
    );
    let issuer = served_issuer(&https, "parley.test");
    eprintln!("served certificate issuer: {issuer}");
    assert!(issuer.contains("Pebble"), "{issuer}");
    assert!(data.join("acme/account.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
