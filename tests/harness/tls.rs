//! A private CA and a server certificate for 127.0.0.1, made with `openssl` for the TLS tests:
//! `ca.crt`, `server.crt` and `server.key` in a temporary directory.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory whose name starts with `tag`.
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a server certificate for 127.0.0.1 signed by it (EC P-256, quick to make).
pub async fn make_certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=failover test CA",
            ],
        ]
        .concat(),
    )
    .await;
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    )
    .await;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )
    .await;
}

/// The files of a private CA and a server certificate for 127.0.0.1 signed by it.
pub struct TlsFiles {
    dir: TempDir,
}

impl TlsFiles {
    /// Makes them, or returns `None` (after saying why) when `openssl` is missing and
    /// `FAILOVER_REQUIRE_REDIS` is not set; with it set, a missing `openssl` fails the test.
    pub async fn create() -> Option<TlsFiles> {
        if !crate::redis_server::tool_available("openssl", "version") {
            return None;
        }
        let dir = TempDir::new("failover-tls");
        make_certificates(&dir.0).await;
        Some(TlsFiles { dir })
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.0.join("ca.crt")
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.0.join("server.crt")
    }

    /// The server's private key (PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.0.join("server.key")
    }
}
