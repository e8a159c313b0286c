//! An outside client written only from the seed document (`tests/seed_client.py`,
//! Python's standard library) works against the server unchanged.

use std::process::Command;
use thindesk_tests::{STUDENT, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_written_from_the_seed_alone_works_unchanged() {
    // The seed changes the password with its token: a seed-era server allows that.
    let server = TestServer::start_seed_era().await;
    server.create_desktop(STUDENT.0, "seed desktop").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/seed_client.py");
    let output = tokio::task::spawn_blocking({
        let base = server.server.url();
        move || {
            Command::new("python3")
                .args([script, &base, STUDENT.0, STUDENT.1, "a-new-password", "08:00:20:0a:8c:6d"])
                .output()
        }
    })
    .await
    .expect("joined")
    .expect("python3 is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "seed client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 20, "{stdout}");
    assert_eq!(stdout.lines().last(), Some("done"));
}
